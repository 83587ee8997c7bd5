"""Socket calls in the timeline (``run --capture``, ``capture --calls``): each call a
program made, as a line placed among the packets by time (pure).

``client: connect() → ECONNREFUSED`` sits just before the packet it caused or after the
one that answered it, so the reader sees which call put which segment on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sockcap.analysis.callfindings import CallFinding, CallFindingCode
from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.story import Moment, error_events, failed_calls
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import TcpFlags
from sockcap.i18n import N_, N_plural, _, ngettext
from sockcap.render.kernel import ProbeFilter, kernel_line

CALL_INDENT = "    ▸ "
FINDING_INDENT = "  ! "
CAUSE_INDENT = "      "
FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))
SIDE_NAMES = {"client": N_("client"), "server": N_("server")}


def call_line(call: Call, first_ts: int, moment: Moment = Moment.WHOLE) -> str:
    """``    ▸ 0.000120  client: send(b'hello') → 5 bytes``; a call that waited across
    packets is two lines, ``connect(...) …`` where it began and ``… connect(...) → ok``
    where it returned."""
    side = _(SIDE_NAMES.get(call.side, call.side))
    ts = call.returned_ns if moment is Moment.RETURNED else call.ts_ns
    t = f"{(ts - first_ts) / 1e9:.6f}" if first_ts else "-"
    if moment is Moment.BEGUN:
        return CALL_INDENT + _("{time}  {side}: {call} …").format(
            time=t, side=side, call=_(call.call) if call.call else "")
    if call.error and call.nbytes >= 0:
        text = ngettext("{time}  {side}: {call} → {count} byte, then {error}",
                        "{time}  {side}: {call} → {count} bytes, then {error}", call.nbytes)
    elif call.error:
        text = _("{time}  {side}: {call} → {error}")
    elif call.nbytes >= 0:
        text = ngettext("{time}  {side}: {call} → {count} byte",
                        "{time}  {side}: {call} → {count} bytes", call.nbytes)
    else:
        text = _("{time}  {side}: {call} → ok")
    # a call's name is a code (JSON keeps it); the few with words in them are in the
    # catalogue, the rest (send(b'hello'), close()) read the same in every language
    name = _(call.call) if call.call else ""
    what = name if moment is Moment.WHOLE else "… " + name
    line = text.format(time=t, side=side, call=what, count=call.nbytes, error=call.error)
    if call.repeat > 1:
        line = ngettext("{line}, {count} time in a row for {seconds:.3f} s",
                        "{line}, {count} times in a row for {seconds:.3f} s", call.repeat).format(
            line=line, count=f"{call.repeat:,}", seconds=(call.returned_ns - call.ts_ns) / 1e9)
    return CALL_INDENT + line


def call_record(call: Call, first_ts: int, before: Sequence[Annotated] = ()) -> dict[str, Any]:
    """A call for ``--json`` (English codes, as every JSON record): ``{"type": "call",
    "call": "connect(127.0.0.1:5001)", "side": "client", "pid": 4242, "fd": 3,
    "syscall": "connect", "args": {"address": "127.0.0.1:5001"}, "result": -1,
    "errno": "ECONNREFUSED", "begin": 0.0001, "end": 0.0002, "time": 0.0001,
    "bytes": null, "conversation": 0, "packets": [1, 2], "caused_by": [2]}``: ``begin``
    and ``end`` in seconds from the first packet, ``packets`` the ones it caused or that
    caused it, ``caused_by`` the ones that made it fail."""

    def rel(ts: int) -> float | None:
        return round((ts - first_ts) / 1e9, 6) if first_ts and ts >= 0 else None

    return {"type": "call", "call": call.call, "side": call.side, "pid": call.pid or None,
            "fd": call.fd if call.fd >= 0 else None, "syscall": call.syscall or None,
            "kind": call.kind.value if call.kind else None, "args": dict(call.args),
            "result": call.result, "errno": call.error or None,
            "error": call.error or None,  # the name it had before "errno"; kept for scripts
            "begin": rel(call.ts_ns), "end": rel(call.end_ns), "time": rel(call.ts_ns),
            "bytes": call.nbytes if call.nbytes >= 0 else None,
            "local": call.local or None, "remote": call.remote or None,
            "conversation": call.stream if call.stream >= 0 else None,
            "packets": list(call.packets), "repeat": call.repeat,
            "caused_by": causes(call, before)}


def causes(call: Call, before: Sequence[Annotated]) -> list[int]:
    """The numbers of the packets that made ``call`` fail (see :func:`cause_line`)."""
    rst = _resets(call, before)
    if call.error in ("ECONNREFUSED", "ECONNRESET", "EPIPE") and rst:
        return [rst[-1].no]
    if call.error == "ETIMEDOUT":
        syns = [a for a in before if a.packet.flags & (SYN | ACK) == SYN]
        return [a.no for a in syns if syns and a.conv is syns[-1].conv]
    if call.error == "EADDRINUSE":
        return [a.no for a in before if a.packet.flags & FIN and a.from_client][:1]
    return []


def _resets(call: Call, before: Sequence[Annotated]) -> list[Annotated]:
    """The RSTs captured before the call returned: of its own connection where the call
    is tied to one, sent by its peer (an EPIPE's or ECONNRESET's cause is the peer's RST)."""
    rst = [a for a in before if a.packet.flags & RST]
    if call.stream >= 0:
        mine = call.side == "client"
        rst = [a for a in rst if a.conv is not None and a.conv.stream == call.stream
               and (call.error == "ECONNREFUSED" or a.from_client != mine)]
    return rst


def cause_line(call: Call, before: Sequence[Annotated], events: Sequence[KernelEvent] = (),
               first_ts: int = 0) -> str | None:
    """For a call that failed, the packet (or packets) that made it fail, from those
    captured before it returned: ``← packet 2: the RST that answered the SYN``; with the
    kernel's events (``--kernel``), the event too: ``[the kernel: tcp_receive_reset at
    0.000210 s]``."""
    line = _packet_cause(call, before)
    kernel = error_events(call, events)
    if not kernel:
        return line
    named = ngettext("[the kernel: {event} at {time} s]",
                     "[the kernel: {event} {count} times, the first at {time} s]",
                     len(kernel)).format(event=kernel[0].kind.value, count=len(kernel),
                                         time=f"{(kernel[0].ts_ns - first_ts) / 1e9:.6f}"
                                         if first_ts else "-")
    return f"{line} {named}" if line else f"{CAUSE_INDENT}← {named}"


def _packet_cause(call: Call, before: Sequence[Annotated]) -> str | None:
    rst = _resets(call, before)
    if call.error == "ECONNREFUSED" and rst:
        return CAUSE_INDENT + _("← packet {no}: the RST that answered the SYN").format(no=rst[-1].no)
    if call.error == "ECONNRESET" and rst:
        return CAUSE_INDENT + _("← packet {no}: the RST from the {peer}").format(
            no=rst[-1].no, peer=_(SIDE_NAMES["client" if rst[-1].from_client else "server"]))
    if call.error == "EPIPE" and rst:
        return CAUSE_INDENT + _("← packet {no}: the RST from the {peer}; its socket is gone, "
                                "nothing more can be sent").format(
            no=rst[-1].no, peer=_(SIDE_NAMES["client" if rst[-1].from_client else "server"]))
    if call.error == "ETIMEDOUT":
        syns = [a for a in before if a.packet.flags & (SYN | ACK) == SYN]
        if syns:
            last = syns[-1].conv
            tries = [a for a in syns if a.conv is last]
            first_ts = tries[0].packet.ts_ns
            return CAUSE_INDENT + ngettext(
                "← the SYN, sent {count} time and never answered: packet {packets}",
                "← the SYN, sent {count} times and never answered: packets {packets}",
                len(tries)).format(count=len(tries), packets=", ".join(
                    f"{a.no} (+{(a.packet.ts_ns - first_ts) / 1e9:.1f} s)" for a in tries))
    if call.error == "EADDRINUSE":
        fins = [a for a in before if a.packet.flags & FIN and a.from_client]
        if fins:
            return CAUSE_INDENT + _("← packet {no}: the client's FIN; the side that closes "
                                    "first keeps the port in TIME_WAIT").format(no=fins[0].no)
    return None


ERROR_WHY = {
    "EPIPE": N_("{name}() failed with EPIPE: the peer reset the connection (its RST came "
                "first), so the socket can send nothing more; the process also gets SIGPIPE, "
                "which kills it unless it is ignored — check what {name}() returns, and use "
                "MSG_NOSIGNAL or signal(SIGPIPE, SIG_IGN)"),
    "ECONNRESET": N_("{name}() failed with ECONNRESET: the peer reset the connection (RST) — "
                     "it closed its socket with bytes unread, or with SO_LINGER set to 0"),
}
"""What a call's error means, said where ``--explain`` asks for it."""


def call_explain(call: Call) -> str | None:
    """The ``--explain`` sentence for a call that failed, when its error has one."""
    words = ERROR_WHY.get(call.error)
    if words is None:
        return None
    return CAUSE_INDENT + _(words).format(name=call.syscall or call.call.partition("(")[0])


def kernel_ties(call: Call, events: Sequence[KernelEvent], first_ts: int,
                ) -> list[dict[str, Any]]:
    """The kernel's events behind a failed call, for its JSON record (``"kernel"``)."""
    return [{"event": e.kind.value, "side": e.side or None,
             "time": round((e.ts_ns - first_ts) / 1e9, 6) if first_ts else None}
            for e in error_events(call, events)]


def call_ties(event: KernelEvent, calls: Sequence[Call], events: Sequence[KernelEvent],
              first_ts: int) -> list[dict[str, Any]]:
    """The calls a kernel event made fail, for its JSON record (``"calls"``)."""
    return [{"syscall": c.syscall or None, "side": c.side, "pid": c.pid or None,
             "fd": c.fd if c.fd >= 0 else None, "errno": c.error,
             "time": round((c.returned_ns - first_ts) / 1e9, 6) if first_ts else None}
            for c in failed_calls(event, calls, events)]


def failed_call_line(event: KernelEvent, calls: Sequence[Call],
                     events: Sequence[KernelEvent]) -> str | None:
    """Under a kernel event's line: the calls it made fail (``→ write() fails with EPIPE``)."""
    failed = failed_calls(event, calls, events)
    if not failed:
        return None
    return CAUSE_INDENT + "→ " + ", ".join(
        _("{side}: {name}() fails with {error}").format(
            side=_(SIDE_NAMES.get(c.side, c.side)), name=c.syscall or c.call.partition("(")[0],
            error=c.error) for c in failed)


def interleave(packets: Iterable[Annotated], calls: Sequence[Call],
               ) -> Iterator[tuple[Annotated | None, Call | None]]:
    """The packets in order with the calls between them by time: ``(packet, None)`` for
    a packet, ``(None, call)`` for a call."""
    ordered = sorted(calls, key=lambda c: c.ts_ns)
    i = 0
    for a in packets:
        while i < len(ordered) and 0 <= ordered[i].ts_ns <= a.packet.ts_ns:
            yield None, ordered[i]
            i += 1
        yield a, None
    for call in ordered[i:]:
        yield None, call


# The sentences of the findings from the calls (``check`` says the same ones:
# sockcap.render.check.FINDING_WORDS).
READ_AFTER_EOF_WORDS = N_plural(
    "{side}: {name}() returned 0 (EOF) at {time} s and the program called {name}() "
    "{count} more time on that socket: it does not stop when the peer has closed "
    "(a loop that checks n < 0 but not n == 0)",
    "{side}: {name}() returned 0 (EOF) at {time} s and the program called {name}() "
    "{count} more times on that socket: it does not stop when the peer has closed "
    "(a loop that checks n < 0 but not n == 0)")
WROTE_MORE_WORDS = N_(
    "{side}: {name}() sent {sent} bytes at {time} s after a read returned {received}: "
    "it sent {extra} bytes more than it received — e.g. strlen() on a buffer without "
    "a terminating NUL")
ONE_READ_WORDS = N_(
    "{side}: {name}() returned {count_bytes} bytes at {time} s holding {segments} segments "
    "the peer sent apart (packets {packets}): TCP is a byte stream, one read is not one "
    "message")


def finding_line(finding: CallFinding, first_ts: int) -> str:
    """A finding from the calls, in a sentence with its evidence: ``server: read()
    returned 0 (EOF) at 1.200000 s and the program called read() 1,834,221 more times``."""
    call = finding.call
    side = _(SIDE_NAMES.get(call.side, call.side))
    t = f"{(call.ts_ns - first_ts) / 1e9:.6f}" if first_ts else "-"
    name = call.syscall or call.call.partition("(")[0]
    if finding.code is CallFindingCode.READ_AFTER_EOF:
        return FINDING_INDENT + ngettext(*READ_AFTER_EOF_WORDS, finding.count).format(
            side=side, name=name, time=t, count=f"{finding.count:,}")
    if finding.code is CallFindingCode.WROTE_MORE_THAN_READ:
        return FINDING_INDENT + _(WROTE_MORE_WORDS).format(
            side=side, name=name, time=t, sent=finding.sent, received=finding.received,
            extra=finding.sent - finding.received)
    return FINDING_INDENT + _(ONE_READ_WORDS).format(
        side=side, name=name, time=t, count_bytes=call.nbytes, segments=finding.count,
        packets=", ".join(str(n) for n in finding.packets))


def finding_record(finding: CallFinding, first_ts: int) -> dict[str, Any]:
    """A finding for ``--json``: ``{"type": "finding", "finding": "read-after-eof",
    "side": "server", "pid": 42, "fd": 4, "time": 1.2, "count": 1834221, ...}``."""
    call = finding.call
    return {"type": "finding", "finding": finding.code.value, "side": call.side,
            "pid": call.pid or None, "fd": call.fd if call.fd >= 0 else None,
            "syscall": call.syscall or None,
            "time": round((call.ts_ns - first_ts) / 1e9, 6) if first_ts else None,
            "count": finding.count, "received": finding.received, "sent": finding.sent,
            "packets": list(finding.packets)}


def packet_comments(calls: Sequence[Call], events: Sequence[KernelEvent],
                    first_ts: int) -> dict[int, list[str]]:
    """The timeline's ``▸`` and ``◆`` lines of the tied calls and kernel events, by the
    number of the first packet each is tied to: the comments a saved pcapng gives its
    packets (:mod:`sockcap.pcapfile.storyfile`). A ``tcp_probe`` only where the window
    changed, as in the timeline."""
    out: dict[int, list[str]] = {}
    for call in calls:
        if call.packets:
            out.setdefault(call.packets[0], []).append(call_line(call, first_ts).strip())
    probes = ProbeFilter()
    for event in events:
        if event.packets and probes.shown(event):
            out.setdefault(event.packets[0], []).append(kernel_line(event, first_ts).strip())
    return out
