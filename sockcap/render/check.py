"""The words of ``sockcap check``: each finding as a sentence, the report, its JSON.

Pure: verdicts (:mod:`sockcap.analysis.check`), the annotated packets they point at and
what the programs printed come in; lines and records go out. Every sentence is one
catalogue message with named placeholders.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sockcap.analysis.check import Check, Finding, Verdict
from sockcap.analysis.conversation import Annotated
from sockcap.i18n import N_, N_plural, _, ngettext
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
}

CHECK_WORDS = {
    Check.LISTEN: N_("listens"),
    Check.ECHO: N_("echo"),
    Check.CLOSE: N_("close"),
    Check.PARTIAL: N_("1-byte segments"),
    Check.LARGE: N_("100 kB message"),
    Check.CONCURRENT: N_("two clients"),
    Check.BACKLOG: N_("burst"),
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
    return template.format(**v.values)


def check_text(check: Check | str) -> str:
    return _(CHECK_WORDS[Check(check)])


def report_lines(verdicts: Sequence[Verdict], packets: Sequence[Annotated], first_ts: int,
                 outputs: Sequence[ProgramText] = (), path: str | None = None) -> list[str]:
    """The report: one line per finding under its check, the packets of each failure."""
    timeline = Timeline()
    timeline.first_ts = first_ts
    by_no = {a.no: a for a in packets}
    results = outcomes(verdicts)
    lines: list[str] = []
    for result in results:
        for v in result.verdicts:
            mark = _("ok  ") if v.ok else _("FAIL")
            lines.append(f"{mark}  {check_text(v.check):<16} {finding_text(v)}")
            if not v.ok:
                lines += ["        " + timeline.line(by_no[n])
                          for n in _shown(v.packets) if n in by_no]
    passed = sum(1 for r in results if r.ok)
    lines.append("")
    lines.append(ngettext("{passed} of {total} check passed", "{passed} of {total} checks passed",
                          len(results)).format(passed=passed, total=len(results)))
    if path:
        lines.append(_("the capture: {path} (sockcap show {path})").format(path=path))
    seen: set[tuple[bytes, bytes, int | None, bool]] = set()
    for out in outputs:  # a server started once per scenario usually prints the same
        key = (out.stdout, out.stderr, out.status, out.stopped)
        if key not in seen:
            seen.add(key)
            lines += program_lines(out)
    return lines


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


def verdict_record(v: Verdict) -> dict[str, Any]:
    return {"check": str(v.check), "finding": str(v.finding), "ok": v.ok,
            "packets": list(v.packets), "values": dict(v.values), "text": finding_text(v)}


def report_record(verdicts: Sequence[Verdict], outputs: Sequence[ProgramText] = (),
                  path: str | None = None) -> dict[str, Any]:
    """The report as JSON-ready data (codes in English, the sentences in the reader's)."""
    return {
        "checks": [{"check": str(r.check), "ok": r.ok,
                    "findings": [verdict_record(v) for v in r.verdicts]}
                   for r in outcomes(verdicts)],
        "pcap": path,
        "programs": [program_record(o) for o in outputs],
    }


def program_record(out: ProgramText) -> dict[str, Any]:
    return {"name": out.name, "argv": list(out.argv), "status": out.status,
            "stopped": out.stopped, "stdout": out.stdout.decode("utf-8", "replace"),
            "stderr": out.stderr.decode("utf-8", "replace")}

