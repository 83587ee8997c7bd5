"""``check``'s findings from the student's own socket calls (pure).

The packets show *what* a server did wrong; its calls, recorded by strace inside the
sandbox (:class:`~sockcap.analysis.check.ScenarioRun` ``calls``), show *which line of its
code* did it. The two classic bugs of a course's echo server are named from the calls,
with the sentences ``capture --calls`` uses (:mod:`sockcap.analysis.callfindings`):

- ``read()`` returned 0 (the client closed) and the server called ``read()`` again and
  again: the loop that checks ``n < 0`` but not ``n == 0``; the finding is tied to the
  client's FIN, the packet that made ``read()`` return 0 (the close check);
- ``write()`` sent more bytes than the ``read()`` before it returned, beginning with
  them: ``strlen()`` on a buffer without a NUL; tied to the segments that carried the
  write (the echo check of the scenario).

A student's client is judged the same way in the client's scenarios: a client that reads
on after ``read()`` returned 0 (the server closed) fails the check of that scenario.

The calls are tied to the scenario's packets here (:func:`sockcap.analysis.story.
tie_calls`), so a finding names packets of the saved pcap, as every other finding does.
A finding the packets alone cannot prove is not made from the calls alone when the
calls were not recorded: no calls, no call findings, and the packet findings stand.

Every finding, whatever it rests on, also gets the evidence behind its packets for the
report: the student's calls that caused them or were caused by them
(:func:`calls_behind`) and, with ``check --kernel``, the kernel's events about them
(:func:`events_behind`: a state change, a drop and its reason, a reset).
"""

from __future__ import annotations

from collections.abc import Sequence

from sockcap.analysis.callfindings import CallFinding, CallFindingCode, call_findings
from sockcap.analysis.calls import Call, CallKind
from sockcap.analysis.check.codes import Check, Finding, Scenario, ScenarioRun, Verdict
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.story import tie_calls, tie_kernel
from sockcap.decode.ftrace import KernelEvent, KernelEventKind

FINDING_OF = {CallFindingCode.READ_AFTER_EOF: Finding.READ_AFTER_EOF,
              CallFindingCode.WROTE_MORE_THAN_READ: Finding.WROTE_MORE_THAN_READ}

# (side, finding) -> the check it fails, per scenario
_CHECKS: dict[tuple[str, CallFindingCode], dict[Scenario, Check]] = {
    ("server", CallFindingCode.READ_AFTER_EOF): {Scenario.ECHO: Check.CLOSE},
    ("server", CallFindingCode.WROTE_MORE_THAN_READ): {
        Scenario.ECHO: Check.ECHO, Scenario.PARTIAL: Check.PARTIAL, Scenario.LARGE: Check.LARGE},
    ("client", CallFindingCode.READ_AFTER_EOF): {
        Scenario.CLIENT_ECHO: Check.CLIENT_CLOSE,
        Scenario.CLIENT_SERVER_CLOSES: Check.CLIENT_SERVER_CLOSES},
}


def judge_calls(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """The verdicts the scenario's calls prove (none when it has no calls). ``packets``:
    the whole capture (its first packet is the report's time 0)."""
    if not run.calls or not run.listening:
        return []
    first_ts = packets[0].packet.ts_ns if packets else 0
    span = [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns]
    tied = tie_calls(run.calls, span)
    verdicts = []
    times = {a.no: a.packet.ts_ns for a in span}
    for finding in call_findings(tied):
        check = _CHECKS.get((finding.call.side, finding.code), {}).get(run.scenario)
        if check is not None:
            verdicts.append(_verdict(finding, check, first_ts, times))
    return verdicts


def tied_calls(packets: Sequence[Annotated], runs: Sequence[ScenarioRun]) -> list[Call]:
    """Every scenario's calls tied to the packets of its span (for the report: each
    finding shows the calls of the student's program behind its packets)."""
    tied: list[Call] = []
    for run in runs:
        if run.calls:
            span = [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns]
            tied += tie_calls(run.calls, span)
    return tied


def tied_events(packets: Sequence[Annotated], runs: Sequence[ScenarioRun],
                events: Sequence[KernelEvent]) -> list[KernelEvent]:
    """The kernel's events (``check --kernel``) tied to the packets of the scenario whose
    span holds them: each scenario has a network namespace of its own, and the trace is
    filtered to the check's port, so an event is about the scenario running then; the
    tie by the socket's two ends leaves out any other namespace's socket on that port."""
    tied: list[KernelEvent] = []
    for run in runs:
        span = [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns]
        mine = [e for e in events if run.start_ns <= e.ts_ns <= run.end_ns]
        if span and (mine or run.listen_overflows):
            tied += tie_kernel(mine, span, run.listen_overflows)
    return tied


QUIET_EVENTS = (KernelEventKind.PROBE, KernelEventKind.CONG_STATE)  # not evidence of a finding


EVIDENCE_ORDER = {KernelEventKind.DROP: 0, KernelEventKind.SEND_RESET: 1,
                  KernelEventKind.RECEIVE_RESET: 2, KernelEventKind.RETRANSMIT: 3,
                  KernelEventKind.STATE: 4}


def events_behind(verdict: Verdict, events: Sequence[KernelEvent]) -> list[KernelEvent]:
    """The kernel's events about a finding's packets: a state change it caused (the
    server's CLOSE_WAIT after the client's FIN), the RST the kernel sent and why
    (TCP_ABORT_ON_LINGER), a drop and its reason (TCP_LISTEN_OVERFLOW, NO_SOCKET) — and
    a drop or reset elsewhere in the same connections (the first SYN an overflowing
    accept queue dropped, when the finding names the SYN sent again). The most telling
    first: drops, resets, retransmissions, states."""
    nos = set(verdict.packets)
    about = [e for e in events if e.kind not in QUIET_EVENTS and nos.intersection(e.packets)]
    streams = {e.stream for e in about if e.stream >= 0}
    more = [e for e in events if e not in about and e.stream in streams
            and e.kind in (KernelEventKind.DROP, KernelEventKind.SEND_RESET)]
    return sorted(about + more, key=lambda e: (EVIDENCE_ORDER.get(e.kind, 9), e.ts_ns))


def calls_behind(verdict: Verdict, calls: Sequence[Call]) -> list[Call]:
    """The calls that caused a finding's packets or were caused by them (a ``connect()``
    refused by its RST, the ``close()`` that sent an RST, the ``write()`` of extra
    bytes), in time order."""
    nos = set(verdict.packets)
    behind = [c for c in calls if nos.intersection(c.packets)]
    resets = {(c.pid, c.fd) for c in behind if c.kind in (CallKind.CLOSE, CallKind.SHUTDOWN)}
    lingers = [c for c in calls if c.kind is CallKind.OPTION and (c.pid, c.fd) in resets
               and ("option", "SO_LINGER") in c.args]  # what made that close() an RST
    return sorted(lingers + behind, key=lambda c: c.ts_ns)


def _verdict(finding: CallFinding, check: Check, first_ts: int,
             times: dict[int, int]) -> Verdict:
    call = finding.call
    # "returned 0 at": when the peer's FIN came (a read that blocked began earlier, and a
    # run of reads collapsed into one returned last much later); "sent … at": its segment
    tied = [times[n] for n in call.packets if n in times]
    at = min(tied) if tied else call.returned_ns
    values: dict[str, object] = {
        "side": call.side, "name": call.syscall or call.call.partition("(")[0],
        "time": f"{(at - first_ts) / 1e9:.6f}" if first_ts else "-",
        "pid": call.pid, "fd": call.fd}
    if finding.code is CallFindingCode.READ_AFTER_EOF:
        values["count"] = finding.count
    else:
        values.update(sent=finding.sent, received=finding.received,
                      extra=finding.sent - finding.received)
    return Verdict(check, FINDING_OF[finding.code], False, call.packets, values)
