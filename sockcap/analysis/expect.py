"""A teacher's own packet-level expectations, as packetdrill or CS144's segment tests let
one write them, judged like the built-in checks.

A spec's ``[[expect]]`` tables are read into :class:`Expectation` records
(:func:`read_expectation`; None where the text is not understood, and the spec says
which key on which line), then judged on the packets of one scenario
(:func:`judge_expectation`), giving the same :class:`~sockcap.analysis.check.codes.Verdict`
records as the built-in checks: a :class:`~sockcap.analysis.check.codes.Finding` code, the
packets it rests on, the values its sentence needs. The grammar, small on purpose:

- an **event** is a side and a packet: ``client FIN``, ``server SYN``, ``server RST``,
  ``client data`` (a segment with a payload); the side may be left out (``RST``: either);
- ``want = EVENT`` with ``after = EVENT`` and ``within = "2s"`` (or ``"500ms"``): the
  first wanted event after the first ``after`` event comes within that time; without
  ``within``, it comes at all; without ``after``, it happens in the exchange;
- ``want = "no EVENT"``: it never happens (``no RST``, ``no server RST``);
- ``want = "no segment larger than MSS"``: no payload is larger than the MSS its
  receiver announced in its SYN (536 bytes where it announced none, RFC 9293 3.7.1);
- ``want = "reply in one segment"``: each reply of the server (its bytes between two
  of the client's) is one segment.

Pure: no clock, no I/O; times are the packets' capture times.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sockcap.analysis.check.codes import FIN, RST, SYN, Check, Finding, ScenarioRun, Verdict
from sockcap.analysis.conversation import Annotated
from sockcap.codes import Code
from sockcap.decode.records import TcpOptionKind

DEFAULT_MSS = 536  # RFC 9293 3.7.1: the MSS a sender assumes when none was announced
DATA = 0  # an event's "flag" for a segment with a payload
FLAGS = {"SYN": SYN, "FIN": FIN, "RST": RST, "DATA": DATA}
SIDES = ("client", "server")
EVENT = re.compile(r"^\s*(?:(client|server)\s+)?(syn|fin|rst|data)\s*$", re.IGNORECASE)
SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$")


class ExpectKind(Code):
    AFTER = "after"  # an event after another (within a time, or at all)
    HAPPENS = "happens"  # an event in the exchange
    NEVER = "never"  # "no EVENT"
    MSS = "no segment larger than MSS"
    ONE_SEGMENT = "reply in one segment"


@dataclass(frozen=True, slots=True)
class Event:
    side: str  # "client", "server" or "" (either)
    flag: str  # "SYN", "FIN", "RST" or "DATA"

    def __str__(self) -> str:
        word = "data" if self.flag == "DATA" else self.flag
        return f"{self.side} {word}" if self.side else word

    def matches(self, a: Annotated) -> bool:
        if self.side and a.from_client != (self.side == "client"):
            return False
        if self.flag == "DATA":
            return a.packet.payload_len > 0
        return bool(a.packet.flags & FLAGS[self.flag])


@dataclass(frozen=True, slots=True)
class Expectation:
    kind: ExpectKind
    want: Event | None = None
    after: Event | None = None
    within_ns: int = 0  # 0: no time limit
    text: str = ""  # its words, as in the spec ("server FIN within 2s after client FIN")


def read_event(text: str) -> Event | None:
    m = EVENT.match(text)
    if m is None:
        return None
    return Event((m.group(1) or "").lower(), m.group(2).upper())


def read_seconds(text: str | float) -> int | None:
    """``"2s"``, ``"500ms"``, ``"1.5"`` or a number of seconds, in ns (None: not a time)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text * 1e9) if text > 0 else None
    m = SECONDS.match(str(text))
    if m is None or float(m.group(1)) <= 0:
        return None
    return int(float(m.group(1)) * (1e6 if m.group(2) == "ms" else 1e9))


def read_expectation(want: str, after: str = "", within: str | float = "") -> \
        Expectation | tuple[str, str]:
    """The expectation, or (the key, its value) that cannot be read."""
    plain = " ".join(want.split()).lower()
    if plain == str(ExpectKind.MSS).lower():
        return Expectation(ExpectKind.MSS, text=str(ExpectKind.MSS))
    if plain == str(ExpectKind.ONE_SEGMENT):
        return Expectation(ExpectKind.ONE_SEGMENT, text=str(ExpectKind.ONE_SEGMENT))
    if plain.startswith("no "):
        event = read_event(want.strip()[3:])
        if event is None:
            return ("want", want)
        return Expectation(ExpectKind.NEVER, event, text=f"no {event}")
    event = read_event(want)
    if event is None:
        return ("want", want)
    start = read_event(after) if after else None
    if after and start is None:
        return ("after", after)
    limit = read_seconds(within) if within != "" else 0
    if limit is None:
        return ("within", str(within))
    if start is None:
        return Expectation(ExpectKind.HAPPENS, event, within_ns=limit or 0, text=str(event))
    shown = f"{event} within {_seconds(limit)}s after {start}" if limit else f"{event} after {start}"
    return Expectation(ExpectKind.AFTER, event, start, limit or 0, shown)


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:g}"


def fields_of(exp: Expectation) -> dict[str, object]:
    """The expectation as values a sentence (in any language) is made from."""
    out: dict[str, object] = {"kind": str(exp.kind)}
    for key, event in (("want", exp.want), ("after", exp.after)):
        if event is not None:
            out[f"{key}_side"], out[f"{key}_flag"] = event.side, event.flag
    if exp.within_ns:
        out["within"] = _seconds(exp.within_ns)
    return out


def judge_expectation(packets: Sequence[Annotated], run: ScenarioRun, exp: Expectation,
                      index: int = 0) -> Verdict:
    """The verdict on one expectation, from the scenario's packets (its first
    conversation on the scenario's port, or every packet of the span for ``no ...``,
    the MSS and the replies)."""
    mine = [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns
            and a.conv is not None and a.packet.is_tcp and run.port in (a.packet.sport, a.packet.dport)]
    values: dict[str, object] = {"expect": exp.text, "index": index, **fields_of(exp)}
    if not mine:
        return Verdict(Check.EXPECT, Finding.EXPECT_NOTHING, False, (), values)
    first = [a for a in mine if a.conv is mine[0].conv]
    span = (mine[0].no, mine[-1].no)
    values |= {"first": span[0], "last": span[1]}
    if exp.kind is ExpectKind.NEVER:
        assert exp.want is not None
        hit = next((a for a in mine if exp.want.matches(a)), None)
        if hit is None:
            return Verdict(Check.EXPECT, Finding.EXPECT_ABSENT, True, span, values)
        return Verdict(Check.EXPECT, Finding.EXPECT_PRESENT, False, (hit.no,),
                       values | {"packet": hit.no})
    if exp.kind is ExpectKind.MSS:
        return _mss(mine, values)
    if exp.kind is ExpectKind.ONE_SEGMENT:
        return _one_segment(first, values)
    return _after(first, exp, values)


def _after(mine: Sequence[Annotated], exp: Expectation, values: dict[str, object]) -> Verdict:
    assert exp.want is not None
    start = mine[0]
    if exp.after is not None:
        found = next((a for a in mine if exp.after.matches(a)), None)
        if found is None:
            return Verdict(Check.EXPECT, Finding.EXPECT_NO_TRIGGER, False, (), values)
        start = found
    hit = next((a for a in mine if a.no > start.no and exp.want.matches(a)), None)
    if exp.after is None:
        hit = next((a for a in mine if exp.want.matches(a)), None)
    values |= {"after": start.no}
    if hit is None:
        return Verdict(Check.EXPECT, Finding.EXPECT_MISSING, False, (start.no,), values)
    took = hit.packet.ts_ns - start.packet.ts_ns
    values |= {"packet": hit.no, "seconds": f"{took / 1e9:.3f}"}
    nos = (start.no, hit.no) if exp.after is not None else (hit.no,)
    if exp.within_ns and took > exp.within_ns:
        return Verdict(Check.EXPECT, Finding.EXPECT_LATE, False, nos, values)
    return Verdict(Check.EXPECT, Finding.EXPECT_MET, True, nos, values)


def announced_mss(a: Annotated) -> int:
    """The MSS in a SYN's options (DEFAULT_MSS where it has none)."""
    for option in a.packet.options:
        if option.kind == TcpOptionKind.MSS and len(option.value) == 2:
            return int.from_bytes(option.value, "big")
    return DEFAULT_MSS


def _mss(mine: Sequence[Annotated], values: dict[str, object]) -> Verdict:
    """Each payload against the MSS its receiver announced (in its conversation)."""
    mss: dict[tuple[int, bool], tuple[int, int]] = {}  # (conv, side) -> (mss, its SYN)
    for a in mine:
        if a.packet.flags & SYN:
            mss[(id(a.conv), a.from_client)] = (announced_mss(a), a.no)
    largest = max(mine, key=lambda a: a.packet.payload_len)
    for a in mine:
        limit, syn = mss.get((id(a.conv), not a.from_client), (DEFAULT_MSS, 0))
        if a.packet.payload_len > limit:
            return Verdict(Check.EXPECT, Finding.EXPECT_MSS_EXCEEDED, False,
                           tuple(n for n in (syn, a.no) if n),
                           values | {"packet": a.no, "size": a.packet.payload_len, "mss": limit,
                                     "syn": syn})
    return Verdict(Check.EXPECT, Finding.EXPECT_MSS_KEPT, True, (largest.no,),
                   values | {"packet": largest.no, "size": largest.packet.payload_len})


def _one_segment(mine: Sequence[Annotated], values: dict[str, object]) -> Verdict:
    """Each run of the server's data segments between the client's is one segment."""
    runs: list[list[Annotated]] = []
    request = 0
    requests: list[int] = []
    previous_client = True
    for a in mine:
        if not a.packet.payload_len:
            continue
        if a.from_client:
            request = a.no
        elif previous_client:
            runs.append([a])
            requests.append(request)
        else:
            runs[-1].append(a)
        previous_client = a.from_client
    if not runs:
        return Verdict(Check.EXPECT, Finding.EXPECT_NO_REPLY, False, (), values)
    for got, asked in zip(runs, requests, strict=True):
        if len(got) > 1:
            return Verdict(Check.EXPECT, Finding.EXPECT_SPLIT, False,
                           (asked, *(a.no for a in got)),
                           values | {"request": asked, "segments": len(got),
                                     "packet": got[0].no, "end": got[-1].no})
    return Verdict(Check.EXPECT, Finding.EXPECT_ONE_SEGMENT, True,
                   tuple(g[0].no for g in runs), values | {"count": len(runs)})
