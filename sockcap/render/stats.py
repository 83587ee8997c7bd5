"""``sockcap stats`` as text or JSON (pure: a report in, lines or a dict out).

The text is aligned plain columns, the same on a terminal and in a pipe (a header line
gets a style the CLI applies on a terminal); the JSON keys are stable.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sockcap.analysis.conversation import ROLES_FIRST_SENDER, ROLES_GUESSED
from sockcap.analysis.stats import ConversationStats, StatsReport
from sockcap.analysis.summary import notes_list
from sockcap.codes import Note, outcome_text
from sockcap.i18n import N_, _
from sockcap.render.timeline import endpoint

_COLUMNS = (N_("stream"), N_("client"), N_("server"), N_("packets >/<"), N_("bytes >/<"),
            N_("duration"), N_("iRTT"), N_("ended"), N_("notes"))


def utc(ns: int) -> str:
    """``2026-11-23 22:55:01.123456 UTC`` from nanoseconds since the epoch (no time zone
    lookup: a pure renderer does not read the machine's settings)."""
    days, rem = divmod(ns // 1000, 86_400_000_000)
    y, m, d = _civil(days)
    return (f"{y:04d}-{m:02d}-{d:02d} {rem // 3_600_000_000:02d}:"
            f"{rem // 60_000_000 % 60:02d}:{rem // 1_000_000 % 60:02d}.{rem % 1_000_000:06d} UTC")


def _civil(days: int) -> tuple[int, int, int]:
    """Days since 1970-01-01 -> (year, month, day), proleptic Gregorian (H. Hinnant)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def fmt_rtt(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms" if ns >= 0 else "-"


def fmt_notes(notes: Mapping[Note, int]) -> str:
    """``2 retransmission; 1 duplicate ACK``, most frequent first; ``-`` when none."""
    return notes_list(notes) if notes else "-"


def stats_lines(report: StatsReport, name: str) -> Iterator[tuple[str, str]]:
    """The report as ``(line, style)`` pairs."""
    yield from _capture_lines(report, name)
    yield "", ""
    yield _("protocols"), "bold"
    for proto, (packets, size) in report.protocols.items():
        yield _("  {proto:<10} {packets:>10} packets {size:>14} bytes").format(
            proto=proto, packets=packets, size=size), ""
    if report.icmp:
        yield "", ""
        yield _("icmp messages"), "bold"
        for message, count in report.icmp.items():
            yield _("  {count:>6}  {message}").format(count=count, message=message), ""
    yield "", ""
    # the rows come TCP first, then UDP (StatsReport): the TCP ones end where UDP begins
    tcp = bisect_left(report.conversations, "UDP", key=_proto)
    yield _("conversations: {tcp} TCP, {udp} UDP (> client to server, < server to client)"
            ).format(tcp=tcp, udp=len(report.conversations) - tcp), "bold"
    if report.conversations:
        yield from _table(report.conversations)
    if report.notes:
        yield "", ""
        yield _("expert notes: {notes}").format(notes=fmt_notes(report.notes)), "bold"


def _capture_lines(report: StatsReport, name: str) -> Iterator[tuple[str, str]]:
    facts = report.facts
    yield _("capture: {name}: {format}, link type {linktypes}, {packets} packets").format(
        name=name, format=facts.format, linktypes=", ".join(facts.linktypes) or "-",
        packets=report.packets), "bold"
    if report.first_ns >= 0:
        span = (report.last_ns - report.first_ns) / 1e9
        yield _("  from {first} to {last} ({seconds:.6f} s)").format(
            first=utc(report.first_ns), last=utc(report.last_ns), seconds=span), ""
    damage = sum(facts.skipped.values())
    if not damage and not facts.warnings:
        yield _("  damaged or odd records: none"), ""
        return
    yield _("  damaged or odd records: {count}").format(count=damage), "yellow"
    for kind, n in facts.skipped.items():
        yield f"    {n} x {kind}", "yellow"
    for warning in facts.warnings[:10]:
        yield f"    {warning}", "dim"


def _proto(c: ConversationStats) -> str:
    return c.proto


def _rows(rows: Sequence[ConversationStats]) -> Iterator[tuple[str, ...]]:
    """Each conversation's cells. The words every row shares are translated once: a
    capture can hold hundreds of thousands of rows."""
    roles = {ROLES_GUESSED: _(" (roles guessed)"), ROLES_FIRST_SENDER: _(" (first sender)")}
    outcomes: dict[Any, str] = {}
    for c in rows:
        ended = outcomes.get(c.ended)
        if ended is None:
            ended = outcomes[c.ended] = outcome_text(c.ended) or "-"
        yield (f"{c.proto.lower()} {c.stream}", endpoint(*c.client) + roles.get(c.roles, ""),
               endpoint(*c.server), f"{c.packets[0]}/{c.packets[1]}",
               f"{c.bytes[0]}/{c.bytes[1]}",
               f"{c.duration_ns / 1e9:.6f} s" if c.duration_ns >= 0 else "-",
               fmt_rtt(c.irtt_ns) if c.proto == "TCP" else "-", ended, fmt_notes(c.notes))


def _table(rows: Sequence[ConversationStats]) -> Iterator[tuple[str, str]]:
    """Two passes over the rows: the column widths need every row first, and the cells
    are made again to be written rather than kept (keeping each row's cells as one
    string cost ~0.15 kB a conversation, more than its packed row: ``stats`` keeps
    <= 200 bytes per finished conversation, bench/RESULTS.md). The rows are made when
    read (:class:`sockcap.pipeline.engine.Rows`), so the second pass costs time only."""
    heads = [_(h) for h in _COLUMNS]
    widths = [len(h) for h in heads]
    for r in _rows(rows):
        widths = list(map(max, widths, map(len, r)))
    ljust = str.ljust
    yield "  " + "  ".join(map(ljust, heads, widths)).rstrip(), "bold"
    for r in _rows(rows):
        yield "  " + "  ".join(map(ljust, r, widths)).rstrip(), ""


def stats_json(report: StatsReport, name: str) -> dict[str, Any]:
    """The report as a JSON-ready dict (stable keys)."""
    f = report.facts
    return {
        "file": name,
        "format": f.format,
        "linktypes": list(f.linktypes),
        "packets": report.packets,
        "first_time": report.first_ns / 1e9 if report.first_ns >= 0 else None,
        "last_time": report.last_ns / 1e9 if report.last_ns >= 0 else None,
        "damaged": dict(f.skipped),
        "warnings": list(f.warnings),
        "protocols": {k: {"packets": v[0], "bytes": v[1]} for k, v in report.protocols.items()},
        "conversations": [conversation_json(c) for c in report.conversations],
        "notes": dict(report.notes),
        "icmp": dict(report.icmp),
    }


def conversation_json(c: ConversationStats) -> dict[str, Any]:
    """One row of the conversations list (also the conversations table's first columns)."""
    return {
        "proto": c.proto, "stream": c.stream,
        "client": endpoint(*c.client), "server": endpoint(*c.server), "roles": c.roles,
        "packets": {"client_to_server": c.packets[0], "server_to_client": c.packets[1]},
        "bytes": {"client_to_server": c.bytes[0], "server_to_client": c.bytes[1]},
        "payload_bytes": {"client_to_server": c.payload[0], "server_to_client": c.payload[1]},
        "start": c.start_ns / 1e9 if c.start_ns >= 0 else None,
        "duration": c.duration_ns / 1e9 if c.duration_ns >= 0 else None,
        "irtt": c.irtt_ns / 1e9 if c.irtt_ns >= 0 else None,
        "notes": dict(c.notes), "ended": c.ended or None,
    }
