"""The words of ``sockcap check``: each finding as a sentence, the report, its JSON.

Pure: verdicts (:mod:`sockcap.analysis.check`), the annotated packets they point at and
what the programs printed come in; lines and records go out. Every sentence is one
catalogue message with named placeholders.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sockcap.analysis.calls import WAITING_KINDS, Call
from sockcap.analysis.check.calls import calls_behind, events_behind
from sockcap.analysis.check.codes import Check, Finding, Verdict
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.story import Moment, placed
from sockcap.decode.ftrace import KernelEvent
from sockcap.i18n import N_, N_plural, _, ngettext
from sockcap.render.calls import (
    READ_AFTER_EOF_WORDS,
    SIDE_NAMES,
    WROTE_MORE_WORDS,
    call_line,
    call_record,
)
from sockcap.render.kernel import kernel_explain, kernel_line, kernel_record
from sockcap.render.timeline import Timeline

# A pair is counted: its plural form is chosen by the value named "count".
FINDING_WORDS: dict[Finding, str | tuple[str, str]] = {
    Finding.NOT_LISTENING: N_("the server was still running but not listening on port {port} after {seconds} s (its output is below)"),
    Finding.EXITED: N_("the server exited with status {status} before it listened on port {port} (its output is below)"),
    Finding.KILLED: N_("the server was killed by {signal} before it listened on port {port} (its output is below)"),
    Finding.KILLED_OUTPUT: N_("the server was killed by SIGXFSZ because its output passed {file_mb} MB, before it listened on port {port}"),
    Finding.KILLED_MEMORY: N_("the server was killed because its processes together passed the memory limit of {memory_mb} MB, before it listened on port {port}"),
    Finding.KILLED_CPU: N_("the server was killed because it used up its {cpu_seconds} s of CPU time, before it listened on port {port}"),
    Finding.NOTHING_CAPTURED: N_("no packet of this exchange was captured on port {port}"),
    Finding.REFUSED: N_("connection refused (packet {packet}): nothing listened on port {port}"),
    Finding.SYN_UNANSWERED: N_("the client's SYN (packet {packet}) was never answered"),
    Finding.NO_REPLY: N_plural("the server accepted the connection but never answered the {count} byte the client sent (packet {packet})",
                               "the server accepted the connection but never answered the {count} bytes the client sent (packet {packet})"),
    Finding.UDP_NO_REPLY: N_plural("no reply came to the client's datagram of {count} byte (packet {packet}): not from the server's address, nor from any other",
                                   "no reply came to the client's datagram of {count} bytes (packet {packet}): not from the server's address, nor from any other"),
    Finding.UDP_WRONG_SOURCE: N_("the reply to packet {request} (packet {packet}) came from {got}, not from {want} where the client sent its request: your server answered from another socket, and a client that connect()ed or checks who answered never sees it"),
    Finding.UDP_WRONG_DESTINATION: N_("your server sent its reply to packet {request} (packet {packet}) to {got}, not to the client's address {want}: send the reply to the address recvfrom() gave you"),
    Finding.CLOSED_EARLY: N_plural("your server closed the connection ({flag}, packet {packet}) when the client had sent {message} of its {total} messages; the client still had {count} message to send",
                                   "your server closed the connection ({flag}, packet {packet}) when the client had sent {message} of its {total} messages; the client still had {count} messages to send"),
    Finding.CLIENT_CUT_SHORT: N_plural("your server closed the connection ({flag}, packet {packet}) before your client had sent its messages: it sent {count} byte of the {least} they hold (without their newlines)",
                                       "your server closed the connection ({flag}, packet {packet}) before your client had sent its messages: it sent {count} bytes of the {least} they hold (without their newlines)"),
    Finding.NOT_ALL_SENT: N_plural("the client could send only {message} of its {total} messages (the last went in packet {after}); {count} message was never sent because the server stopped reading",
                                   "the client could send only {message} of its {total} messages (the last went in packet {after}); {count} messages were never sent because the server stopped reading"),
    Finding.ANSWERED_AFTER_NEXT: N_("your server answered message {message} (packet {sent}) only after message {next} came (packet {after}), in packet {packet}: it needed more than the message's bytes (a newline?) before it answered, so a client that waits for each reply waits for ever"),
    Finding.ANSWERED_AFTER_FIN: N_("your server answered message {message} (packet {sent}) only after the client closed (FIN, packet {after}), in packet {packet}: it needed the end of the stream (or a newline the message did not have) before it answered, so a client that waits for each reply waits for ever"),
    Finding.ECHO_EXACT: N_plural("all {count} byte came back byte for byte (packets {first}–{last})",
                                 "all {count} bytes came back byte for byte (packets {first}–{last})"),
    Finding.ECHO_EXTRA: N_plural("your server sent {count} byte more than it received, after packet {client_packet} (packet {server_packet}): {got_hex}",
                                 "your server sent {count} bytes more than it received, after packet {client_packet} (packet {server_packet}): {got_hex}"),
    Finding.ECHO_LEFTOVER: N_plural("your server sent {count} byte more than it received, after packet {client_packet} (packet {server_packet}): {got_hex} is left over from an earlier message (the buffer was not cut at the length read() returned)",
                                    "your server sent {count} bytes more than it received, after packet {client_packet} (packet {server_packet}): {got_hex} are left over from an earlier message (the buffer was not cut at the length read() returned)"),
    Finding.ECHO_MISSING: N_plural("{count} byte the client sent (packet {client_packet}) never came back: {sent_hex}",
                                   "{count} bytes the client sent (packet {client_packet}) never came back: {sent_hex}"),
    Finding.ECHO_DIFFERENT: N_("byte {offset} of the reply (packet {server_packet}) differs from the request (packet {client_packet}): sent {sent_hex}, got {got_hex}"),
    Finding.CLOSED_BY_FIN: N_("the server closed with FIN (packet {packet}) after the client's FIN (packet {fin})"),
    Finding.CLOSED_FIRST: N_("the server closed first, with FIN (packet {packet}), once every message was answered; the client's FIN followed (packet {fin})"),
    Finding.CLOSED_BEFORE_CLIENT: N_("the server closed first (FIN, packet {packet}) while the client still had messages to send; the client's FIN came after it (packet {fin}): close when read() returns 0, not before"),
    Finding.NO_CLOSE: N_("the client closed (FIN, packet {fin}) but the server sent no FIN within {seconds} s: its socket stayed in CLOSE_WAIT ({close_wait} seen); close the socket when read() returns 0"),
    Finding.BUSY_LOOP: N_("after the client left (packet {fin}) the server's processes used {cpu} s of CPU in {seconds} s: a loop that keeps calling read() after it returned 0"),
    Finding.READ_AFTER_EOF: READ_AFTER_EOF_WORDS,  # the sentences capture --calls says
    Finding.WROTE_MORE_THAN_READ: WROTE_MORE_WORDS,
    Finding.RESET_CLOSE: N_("the server reset the connection (RST, packet {packet}) instead of closing it with FIN (SO_LINGER with a zero timeout, or close() with unread bytes)"),
    Finding.DATA_AFTER_FIN: N_plural("the server sent {count} byte after the client's FIN (packet {fin}), from packet {first} on: nothing the client had asked for",
                                     "the server sent {count} bytes after the client's FIN (packet {fin}), from packet {first} on: nothing the client had asked for"),
    Finding.SECOND_SERVED: N_("a second client was answered (packet {reply}) while the first stayed connected"),
    Finding.SECOND_REFUSED: N_("a second client was refused (packet {packet}) while the first was connected"),
    Finding.SECOND_STARVED: N_("a second client connected (packet {syn}) while the first was connected, and its message (packet {packet}) got no answer while the first stayed: the server serves one client at a time"),
    Finding.BURST_SERVED: N_plural("{count} connection opened at once was accepted",
                                   "{count} connections opened at once were all accepted"),
    Finding.BACKLOG_OVERFLOW: N_plural("of {count} connection opened at once, {again} had a SYN or SYN-ACK sent again (first: packet {first}) and {unanswered} were never answered: the listen backlog overflowed (a larger listen() backlog, or accept() sooner)",
                                       "of {count} connections opened at once, {again} had a SYN or SYN-ACK sent again (first: packet {first}) and {unanswered} were never answered: the listen backlog overflowed (a larger listen() backlog, or accept() sooner)"),
    Finding.CLIENT_NEVER_CONNECTED: N_("your client never connected to port {port} (its output is below)"),
    Finding.CLIENT_SENT_STDIN: N_plural("your client sent the {count} byte it read from stdin, as they were (packets {first}–{last})",
                                        "your client sent the {count} bytes it read from stdin, as they were (packets {first}–{last})"),
    Finding.CLIENT_SENT_WITHOUT_NEWLINES: N_plural("your client sent what it read from stdin without the newlines ({count} byte, packets {first}–{last})",
                                                   "your client sent what it read from stdin without the newlines ({count} bytes, packets {first}–{last})"),
    Finding.CLIENT_SENT_PART: N_plural("your client sent only {count} byte of the {total} it read from stdin (the last in packet {packet}); never sent: {missing_hex}",
                                       "your client sent only {count} bytes of the {total} it read from stdin (the last in packet {packet}); never sent: {missing_hex}"),
    Finding.CLIENT_SENT_DIFFERENT: N_("byte {offset} of what your client sent (packet {packet}) is not what it read from stdin: sent {sent_hex}, stdin {stdin_hex}"),
    Finding.CLIENT_READ_ALL: N_plural("your client read the whole echo ({count} byte in {segments} segments, packets {first}–{last}) before it closed",
                                      "your client read the whole echo ({count} bytes in {segments} segments, packets {first}–{last}) before it closed"),
    Finding.CLIENT_CLOSED_EARLY: N_plural("your client closed the connection ({flag}, packet {packet}) when {got} of the {count} echoed byte had come; the rest came after it (from packet {first} on): read until the whole reply is there, a reply can come in several segments",
                                          "your client closed the connection ({flag}, packet {packet}) when {got} of the {count} echoed bytes had come; the rest came after it (from packet {first} on): read until the whole reply is there, a reply can come in several segments"),
    Finding.CLIENT_CLOSED_BY_FIN: N_("your client closed with FIN (packet {packet}) once stdin ended, and exited with status 0"),
    Finding.CLIENT_RESET: N_("your client reset the connection (RST, packet {packet}) instead of closing it with FIN (SO_LINGER with a zero timeout, or close() with unread bytes)"),
    Finding.CLIENT_NO_CLOSE: N_("your client never closed the connection: {seconds} s after the last packet (packet {packet}) it was still running with the connection open; close the socket when stdin ends"),
    Finding.CLIENT_HUNG: N_("your client closed (FIN, packet {packet}) but was still running {seconds} s later"),
    Finding.CLIENT_FAILED: N_("your client closed (packet {packet}) but exited with status {status} after a good exchange (its output is below)"),
    Finding.CLIENT_NOTICED_CLOSE: N_("the server closed without answering (FIN, packet {packet}); your client stopped with status {status} and said why"),
    Finding.CLIENT_IGNORED_CLOSE: N_("the server closed without answering (FIN, packet {packet}) and {seconds} s later your client was still running: read() returning 0 means the server closed; stop and say so"),
    Finding.CLIENT_SILENT_CLOSE: N_("the server closed without answering (FIN, packet {packet}) and your client exited with status 0 as if all went well: print an error and exit with a non-zero status"),
    Finding.CLIENT_UNEXPLAINED_CLOSE: N_("the server closed without answering (FIN, packet {packet}); your client stopped with status {status} but printed nothing: say what happened (perror)"),
    Finding.CLIENT_NOTICED_REFUSED: N_("the connection was refused (RST, packet {packet}); your client stopped with status {status} and said why"),
    Finding.CLIENT_HUNG_REFUSED: N_("the connection was refused (RST, packet {packet}) and {seconds} s later your client was still running ({attempts} SYN sent): a refused connect() is an error to report, not to wait on"),
    Finding.CLIENT_SILENT_REFUSED: N_("the connection was refused (RST, packet {packet}) and your client exited with status 0 as if all went well: print an error and exit with a non-zero status"),
    Finding.CLIENT_UNEXPLAINED_REFUSED: N_("the connection was refused (RST, packet {packet}); your client stopped with status {status} but printed nothing: say what happened (perror)"),
    Finding.EXPECT_MET: N_("{expect}: yes, packet {packet}, {seconds} s after packet {after}"),
    Finding.EXPECT_LATE: N_("{expect}: no, packet {packet} came {seconds} s after packet {after}"),
    Finding.EXPECT_MISSING: N_("{expect}: no, nothing of the kind after packet {after} (up to packet {last})"),
    Finding.EXPECT_NO_TRIGGER: N_("{expect}: cannot be judged, the event it starts from never happened (packets {first}–{last})"),
    Finding.EXPECT_ABSENT: N_("{expect}: yes, none in packets {first}–{last}"),
    Finding.EXPECT_PRESENT: N_("{expect}: no, packet {packet} is one"),
    Finding.EXPECT_MSS_KEPT: N_("{expect}: yes, the largest segment carried {size} bytes (packet {packet})"),
    Finding.EXPECT_MSS_EXCEEDED: N_("{expect}: no, packet {packet} carried {size} bytes, more than the MSS of {mss} bytes its receiver announced (packet {syn})"),
    Finding.EXPECT_ONE_SEGMENT: N_plural("{expect}: yes, {count} reply, each in one segment",
                                         "{expect}: yes, {count} replies, each in one segment"),
    Finding.EXPECT_SPLIT: N_("{expect}: no, the reply to packet {request} came in {segments} segments (packets {packet}–{end})"),
    Finding.EXPECT_NO_REPLY: N_("{expect}: cannot be judged, the server sent no data (packets {first}–{last})"),
    Finding.EXPECT_NOTHING: N_("{expect}: cannot be judged, no packet of the exchange was captured"),
    Finding.UDP_LOOPBACK_ONLY: N_("your server's socket is bound to {address}:{port}, so a client on another host never reaches it: bind to INADDR_ANY (or the host's address)"),
    Finding.UDP_CLIENTS_SERVED: N_plural("two clients took turns: each of the {count} datagram was answered at the address it came from (packets {first}–{last})",
                                         "two clients took turns: each of the {count} datagrams was answered at the address it came from (packets {first}–{last})"),
    Finding.UDP_FIRST_ONLY: N_plural("your server answered only the first client ({served}): the {count} datagram of the second client ({client}, from packet {first} on) got no reply",
                                     "your server answered only the first client ({served}): the {count} datagrams of the second client ({client}, from packet {first} on) got no reply"),
    Finding.UDP_FIRST_ADDRESS: N_("your server sent the reply to the second client's datagram (packet {request}) to {got}, the first client's address, not to {want} (packet {packet}): it kept the first address recvfrom() gave it; answer each datagram at the address recvfrom() gave for it"),
    Finding.UDP_LARGE_WHOLE: N_("the datagram of {size} bytes (packet {request}, {fragments} IP fragments on a link with an MTU of 1500) came back whole (packet {packet})"),
    Finding.UDP_LARGE_CUT: N_("your server answered the datagram of {size} bytes (packet {request}, {fragments} IP fragments) with only {got} bytes (packet {packet}): its recvfrom() buffer is smaller than the datagram, and the rest was thrown away"),
    Finding.CLIENT_UDP_NO_TIMEOUT: N_("the link lost a datagram or its reply (packet {packet}) and {seconds} s later your client was still waiting: use a timeout (SO_RCVTIMEO or select()) and send again"),
    Finding.CLIENT_UDP_RESENT: N_("the link lost {lost} datagrams or their replies; your client sent again ({resent} times) and got every reply"),
    Finding.CLIENT_UDP_GAVE_UP: N_("the link lost a datagram or its reply (packet {packet}); your client sent again {resent} times, then stopped with status {status}"),
    Finding.CLIENT_UDP_SILENT: N_("the reply to packet {packet} never came, and your client exited with status 0 without sending again"),
    Finding.CLIENT_UDP_WAITED_FOR_ITS_REPLY: N_plural("late duplicates of earlier replies came first; your client waited for the reply to each of its {count} message before it sent the next (packets {first}–{last})",
                                                      "late duplicates of earlier replies came first; your client waited for the reply to each of its {count} messages before it sent the next (packets {first}–{last})"),
    Finding.CLIENT_UDP_TOOK_DUPLICATE: N_("your client sent message {message} (packet {packet}) and, before its reply came, the next one (packet {next}): it took a late duplicate of an earlier reply (packet {duplicate}) for it; check that a reply is the one you wait for"),
    Finding.CLIENT_UDP_NOTHING: N_("your client sent no datagram to port {port} (its output is below)"),
    Finding.CLIENT_UDP_ONE_IN_FLIGHT: N_plural("your client waited for each reply before it sent the next of its {count} message, so no reply could overtake another (packets {first}–{last})",
                                               "your client waited for each reply before it sent the next of its {count} messages, so no reply could overtake another (packets {first}–{last})"),
    Finding.CLIENT_UDP_KEPT_ORDER: N_("the reply to message {later} (packet {packet}) overtook the reply to message {earlier} (packet {other}), and your client still printed the replies in the order of its messages"),
    Finding.CLIENT_UDP_ASSUMED_ORDER: N_("the reply to message {later} (packet {packet}) overtook the reply to message {earlier} (packet {other}), and your client printed the replies in the order they arrived (messages {printed}): UDP keeps no order; match each reply to its message, or wait for each reply before sending the next"),
    Finding.CLIENT_UDP_REPLY_NOT_SHOWN: N_("the reply to message {message} came (packet {reply}), and your client did not print it"),
}

CHECK_WORDS = {
    Check.LISTEN: N_("listens"),
    Check.ECHO: N_("echo"),
    Check.CLOSE: N_("close"),
    Check.PARTIAL: N_("1-byte segments"),
    Check.LARGE: N_("100 kB message"),
    Check.CONCURRENT: N_("two clients"),
    Check.BACKLOG: N_("burst"),
    Check.CLIENT_ECHO: N_("the client sends its stdin and reads the whole echo"),
    Check.CLIENT_CLOSE: N_("the client closes with FIN and exits"),
    Check.CLIENT_SERVER_CLOSES: N_("the client stops with an error when the server closes"),
    Check.CLIENT_REFUSED: N_("the client stops with an error when refused"),
    Check.EXPECT: N_("the teacher's own expectations"),
    Check.UDP_CLIENTS: N_("two UDP clients, each answered at its address"),
    Check.UDP_LARGE: N_("a datagram larger than the MTU, answered whole"),
    Check.CLIENT_TIMEOUT: N_("the UDP client does not wait for ever for a lost reply"),
    Check.CLIENT_DUPLICATES: N_("the UDP client waits for the reply to its own message"),
    Check.CLIENT_REORDER: N_("the UDP client does not take replies to come in order"),
}

PACKET_LINES = 6  # timeline lines shown under a failing finding


class ProgramText(Protocol):
    """What a program printed (:class:`sockcap.check.programs.ProgramOutput`)."""

    @property
    def name(self) -> str: ...
    @property
    def argv(self) -> tuple[str, ...]: ...
    @property
    def status(self) -> int | None: ...
    @property
    def stopped(self) -> bool: ...
    @property
    def stdout(self) -> bytes: ...
    @property
    def stderr(self) -> bytes: ...


@dataclass(frozen=True)
class CheckOutcome:
    """One check: passed when every verdict on it passed."""

    check: Check
    ok: bool
    verdicts: tuple[Verdict, ...]


def outcomes(verdicts: Iterable[Verdict]) -> list[CheckOutcome]:
    """The verdicts grouped by check, in the order the checks first appear."""
    groups: dict[Check, list[Verdict]] = {}
    for v in verdicts:
        groups.setdefault(v.check, []).append(v)
    return [CheckOutcome(c, all(v.ok for v in vs), tuple(vs)) for c, vs in groups.items()]


def finding_text(v: Verdict) -> str:
    words = FINDING_WORDS[v.finding]
    if isinstance(words, tuple):
        count = v.values.get("count", 0)
        template = ngettext(*words, count if isinstance(count, int) else 0)
    else:
        template = _(words)
    if v.check is Check.EXPECT:
        return template.format(**{**v.values, "expect": expectation_words(v.values)})
    if v.finding in (Finding.READ_AFTER_EOF, Finding.WROTE_MORE_THAN_READ):
        side, count = str(v.values.get("side", "")), v.values.get("count", 0)
        return template.format(**{**v.values, "side": _(SIDE_NAMES.get(side, side)),
                                  "count": f"{count:,}" if isinstance(count, int) else count})
    return template.format(**v.values)


EVENT_WORDS = {("client", "DATA"): N_("client data"), ("server", "DATA"): N_("server data"),
               ("", "DATA"): N_("data"), ("client", ""): N_("client {flag}"),
               ("server", ""): N_("server {flag}"), ("", ""): "{flag}"}


def event_words(side: object, flag: object) -> str:
    """``server FIN`` in the reader's language (the flag's name is the protocol's)."""
    words = EVENT_WORDS.get((str(side), str(flag))) or EVENT_WORDS[(str(side), "")]
    return (_(words) if words != "{flag}" else words).format(flag=flag)


def expectation_words(values: Mapping[str, object]) -> str:
    """An expectation of the spec in the reader's language, from a verdict's values
    (:func:`sockcap.analysis.expect.fields_of`): "server FIN within 2 s after client FIN"."""
    kind = values.get("kind")
    if kind == "no segment larger than MSS":
        return _("no segment larger than the MSS")
    if kind == "reply in one segment":
        return _("each reply in one segment")
    want = event_words(values.get("want_side", ""), values.get("want_flag", ""))
    if kind == "never":
        return _("no {event}").format(event=want)
    within = values.get("within")
    if kind == "after":
        after = event_words(values.get("after_side", ""), values.get("after_flag", ""))
        if within:
            return _("{want} within {seconds} s after {after}").format(
                want=want, seconds=within, after=after)
        return _("{want} after {after}").format(want=want, after=after)
    if within:
        return _("{want} within {seconds} s of the first packet").format(want=want,
                                                                         seconds=within)
    return want


def check_text(check: Check | str) -> str:
    """What a check is about, in words (its name, the same everywhere, is its code)."""
    return _(CHECK_WORDS[Check(check)])


def report_lines(verdicts: Sequence[Verdict], packets: Sequence[Annotated], first_ts: int,
                 outputs: Sequence[ProgramText] = (), path: str | None = None,
                 calls: Sequence[Call] = (), events: Sequence[KernelEvent] = ()) -> list[str]:
    """The report: one line per finding under its check, the packets of each failure,
    the student's calls behind them (where they were traced) and the kernel's events
    about them (``--kernel``)."""
    return [text for text, _style in report_pairs(verdicts, packets, first_ts, outputs, path,
                                                  calls, events)]


def report_pairs(verdicts: Sequence[Verdict], packets: Sequence[Annotated], first_ts: int,
                 outputs: Sequence[ProgramText] = (), path: str | None = None,
                 calls: Sequence[Call] = (), events: Sequence[KernelEvent] = (),
                 ) -> list[tuple[str, str]]:
    """The report's lines with their styles (what passed green, what failed red, the
    count bold): the same text as :func:`report_lines`, coloured only on a terminal."""
    timeline = Timeline()
    timeline.first_ts = first_ts
    by_no = {a.no: a for a in packets}
    results = outcomes(verdicts)
    lines: list[tuple[str, str]] = []
    for result in results:
        for v in result.verdicts:
            mark = _("ok  ") if v.ok else _("FAIL")
            lines.append((f"{mark}  {v.check:<20} {finding_text(v)}", "green" if v.ok else "red"))
            if not v.ok:
                lines += [("        " + timeline.line(by_no[n]), "")
                          for n in _shown(v.packets) if n in by_no]
                lines += [(_call_evidence(c, by_no, first_ts), "cyan")
                          for c in calls_behind(v, calls)]
                said: set[str | None] = set()
                for e in events_behind(v, events)[:PACKET_LINES]:
                    lines.append(("    " + kernel_line(e, first_ts), ""))
                    why = kernel_explain(e)
                    if why not in said:  # a reason's sentence once under a finding
                        said.add(why)
                        lines += [("    " + why, "")] if why is not None else []
    passed = sum(1 for r in results if r.ok)
    lines.append(("", ""))
    lines.append((ngettext("{passed} of {total} check passed", "{passed} of {total} checks passed",
                           len(results)).format(passed=passed, total=len(results)), "bold"))
    if path:
        lines.append((_("the capture: {path} (sockcap show {path})").format(path=path), ""))
    seen: set[tuple[bytes, bytes, int | None, bool]] = set()
    for out in outputs:  # a server started once per scenario usually prints the same
        key = (out.stdout, out.stderr, out.status, out.stopped)
        if key not in seen:
            seen.add(key)
            lines += [(line, "") for line in program_lines(out)]
    return lines


def _call_evidence(call: Call, by_no: Mapping[int, Annotated], first_ts: int) -> str:
    """A call under a finding, on the packets' clock (:func:`sockcap.analysis.story.
    placed`); one that waited for the peer (a ``read()`` blocked until the bytes came) is
    shown where it returned, as ``… read() → 3 bytes``."""
    call = placed(call, dict(by_no))
    waited = call.kind in WAITING_KINDS and call.repeat == 1 and call.end_ns > call.ts_ns
    return "    " + call_line(call, first_ts, Moment.RETURNED if waited else Moment.WHOLE)


def _shown(nos: Sequence[int]) -> list[int]:
    if len(nos) <= PACKET_LINES:
        return list(nos)
    return [*nos[: PACKET_LINES - 1], nos[-1]]


def program_lines(out: ProgramText, limit: int = 20) -> list[str]:
    """What a program printed, when it printed anything or failed on its own."""
    failed = out.status not in (0, None) and not out.stopped
    if not out.stdout and not out.stderr and not failed:
        return []
    if out.stopped:
        head = _("{name} ({argv}): stopped by sockcap").format(name=out.name, argv=" ".join(out.argv))
    elif out.status is not None and out.status < 0:
        head = _("{name} ({argv}): killed by {signal}").format(
            name=out.name, argv=" ".join(out.argv), signal=signal_name(-out.status))
    else:
        head = _("{name} ({argv}): exited with status {status}").format(
            name=out.name, argv=" ".join(out.argv), status=out.status)
    lines = ["", head]
    for label, data in ((_("stdout"), out.stdout), (_("stderr"), out.stderr)):
        text = data.decode("utf-8", "replace").splitlines()
        lines += [f"  {label}: {line}" for line in text[:limit]]
        if len(text) > limit:
            more = len(text) - limit
            lines.append(ngettext("  {label}: … {more} more line", "  {label}: … {more} more lines",
                                  more).format(label=label, more=more))
    return lines


def signal_name(number: int) -> str:
    """``SIGXFSZ`` for 25 (the number where Python knows no name)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def verdict_record(v: Verdict, calls: Sequence[Call] = (), first_ts: int = 0,
                   events: Sequence[KernelEvent] = ()) -> dict[str, Any]:
    """A finding for JSON; ``calls``: the student's calls behind its packets, as
    ``show --json`` writes a call (``"type": "call"``, times from the first packet);
    ``kernel``: the kernel's events about them (``"type": "kernel"``), with --kernel."""
    return {"check": str(v.check), "finding": str(v.finding), "ok": v.ok,
            "packets": list(v.packets), "values": dict(v.values), "text": finding_text(v),
            "calls": [call_record(c, first_ts) for c in calls_behind(v, calls)],
            "kernel": [kernel_record(e, first_ts) for e in events_behind(v, events)]}


def report_record(verdicts: Sequence[Verdict], outputs: Sequence[ProgramText] = (),
                  path: str | None = None, calls: Sequence[Call] = (),
                  first_ts: int = 0, events: Sequence[KernelEvent] = ()) -> dict[str, Any]:
    """The report as JSON-ready data (codes in English, the sentences in the reader's)."""
    return {
        "checks": [{"check": str(r.check), "ok": r.ok,
                    "findings": [verdict_record(v, calls, first_ts, events)
                                 for v in r.verdicts]}
                   for r in outcomes(verdicts)],
        "pcap": path,
        "programs": [program_record(o) for o in outputs],
    }


def program_record(out: ProgramText) -> dict[str, Any]:
    return {"name": out.name, "argv": list(out.argv), "status": out.status,
            "stopped": out.stopped, "stdout": out.stdout.decode("utf-8", "replace"),
            "stderr": out.stderr.decode("utf-8", "replace")}

