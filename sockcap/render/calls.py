"""Socket calls in the timeline (``run --scenario``): each call a scenario's client or
server made, as a line placed among the packets by time (pure).

``client: connect() → ECONNREFUSED`` sits just before the packet it caused or after the
one that answered it, so the reader sees which call put which segment on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.decode.records import TcpFlags
from sockcap.i18n import N_, _, ngettext

CALL_INDENT = "    ▸ "
CAUSE_INDENT = "      "
FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))
SIDE_NAMES = {"client": N_("client"), "server": N_("server")}


def call_line(call: Call, first_ts: int) -> str:
    """``    ▸ 0.000120  client: send(b'hello') → 5 bytes``."""
    side = _(SIDE_NAMES.get(call.side, call.side))
    t = f"{(call.ts_ns - first_ts) / 1e9:.6f}" if first_ts else "-"
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
    return CALL_INDENT + text.format(time=t, side=side, call=_(call.call) if call.call else "", count=call.nbytes,
                                     error=call.error)


def call_record(call: Call, first_ts: int, before: Sequence[Annotated] = ()) -> dict[str, Any]:
    """A call for ``--json`` (English codes, as every JSON record): ``{"call": "connect()",
    "side": "client", "time": 0.0001, "bytes": null, "error": "ECONNREFUSED",
    "caused_by": [2]}`` (the packet numbers that made it fail, when known)."""
    return {"call": call.call, "side": call.side,
            "time": round((call.ts_ns - first_ts) / 1e9, 6) if first_ts else None,
            "bytes": call.nbytes if call.nbytes >= 0 else None, "error": call.error or None,
            "caused_by": causes(call, before)}


def causes(call: Call, before: Sequence[Annotated]) -> list[int]:
    """The numbers of the packets that made ``call`` fail (see :func:`cause_line`)."""
    rst = [a for a in before if a.packet.flags & RST]
    if call.error in ("ECONNREFUSED", "ECONNRESET") and rst:
        return [rst[-1].no]
    if call.error == "ETIMEDOUT":
        syns = [a for a in before if a.packet.flags & (SYN | ACK) == SYN]
        return [a.no for a in syns if syns and a.conv is syns[-1].conv]
    if call.error == "EADDRINUSE":
        return [a.no for a in before if a.packet.flags & FIN and a.from_client][:1]
    return []


def cause_line(call: Call, before: Sequence[Annotated]) -> str | None:
    """For a call that failed, the packet (or packets) that made it fail, from those
    captured before it returned: ``← packet 2: the RST that answered the SYN``."""
    rst = [a for a in before if a.packet.flags & RST]
    if call.error == "ECONNREFUSED" and rst:
        return CAUSE_INDENT + _("← packet {no}: the RST that answered the SYN").format(no=rst[-1].no)
    if call.error == "ECONNRESET" and rst:
        return CAUSE_INDENT + _("← packet {no}: the RST from the {peer}").format(
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
