"""Judging a student's echo client from the wire, against sockcap's own server.

Pure, like :mod:`sockcap.analysis.check`: the annotated packets of the capture and what
the edge saw of the client (:class:`~sockcap.analysis.check.ScenarioRun`: its exit status,
whether it was still running when the scenario's time was up, whether it printed
anything) come in; :class:`~sockcap.analysis.check.Verdict` records come out, each tied
to the packets it rests on.

Three scenarios (:data:`~sockcap.analysis.check.CLIENT_SCENARIOS`):

- the echo: did the client connect, send what it read from stdin (with its newlines or
  without them), read the whole echo (sockcap's server sends it in pieces, apart in
  time: a client that closes while pieces are still coming read only part of it), close
  with FIN (not RST) and exit?
- the server closes first, without answering: does the client stop with a non-zero
  status and a word of explanation, or wait for ever?
- nothing listens: the same, for a refused connection.

Only the packets inside the scenario's span count: the edge ends the span before it stops
a client that is still running, so the FIN the kernel sends for a killed client is never
taken for the client's own close.
"""

from __future__ import annotations

from collections.abc import Sequence

from sockcap.analysis.check import (
    FIN,
    RST,
    SYN,
    Check,
    Finding,
    Scenario,
    ScenarioRun,
    Side,
    Verdict,
    compare_echo,
    conversations_in,
    first_with,
    hex_bytes,
    judge,
    own,
    streams,
)
from sockcap.analysis.check_calls import judge_calls
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.udp_check import (
    judge_udp_client_duplicates,
    judge_udp_client_loss,
    judge_udp_clients,
    judge_udp_large,
)

_CHECK_OF = {Scenario.CLIENT_ECHO: Check.CLIENT_ECHO,
             Scenario.CLIENT_SERVER_CLOSES: Check.CLIENT_SERVER_CLOSES,
             Scenario.CLIENT_REFUSED: Check.CLIENT_REFUSED}


def judge_scenario(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """The verdicts on one scenario, whichever program it was about: from its packets,
    then from the programs' own calls where they were recorded
    (:func:`sockcap.analysis.check_calls.judge_calls`)."""
    if run.scenario in _UDP_JUDGES and run.listening:
        verdicts = _UDP_JUDGES[run.scenario](packets, run)
    elif run.scenario not in _CHECK_OF:
        verdicts = judge(packets, run)
    else:
        verdicts = judge_client(packets, run)
    return verdicts + judge_calls(packets, run)


_UDP_JUDGES = {Scenario.UDP_CLIENTS: judge_udp_clients, Scenario.UDP_LARGE: judge_udp_large,
               Scenario.UDP_CLIENT_LOSS: judge_udp_client_loss,
               Scenario.UDP_CLIENT_DUPLICATES: judge_udp_client_duplicates}


def judge_client(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    packets = [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns]
    check = _CHECK_OF[run.scenario]
    if run.scenario is Scenario.CLIENT_REFUSED:
        return judge_refused(packets, run)
    convs = [c for c in conversations_in(packets, run) if c.server[1] == run.port]
    if not convs:
        return [never_connected(run, check)]
    mine = own(packets, convs[0])
    if run.scenario is Scenario.CLIENT_SERVER_CLOSES:
        return [judge_server_closes(mine, run)]
    client, server = streams(mine, convs[0])
    verdicts = [judge_sent(client, b"".join(run.probe), mine)]
    read = judge_read(mine, server)
    if read is not None:
        verdicts.append(read)
    return [*verdicts, judge_client_close(mine, run)]


def never_connected(run: ScenarioRun, check: Check) -> Verdict:
    return Verdict(check, Finding.CLIENT_NEVER_CONNECTED, False, (),
                   {"port": run.port, "status": _status(run), "seconds": _seconds(run)})


def judge_sent(client: Side, stdin: bytes, mine: Sequence[Annotated]) -> Verdict:
    """Did the client send what it read from stdin (its newlines kept, or all left out)?"""
    sent = bytes(client.data)
    nos = tuple(client.packets)
    span = (nos[0], nos[-1]) if nos else ()
    values: dict[str, object] = {"count": len(stdin), "first": nos[0] if nos else 0,
                                 "last": nos[-1] if nos else 0}
    if sent == stdin:
        return Verdict(Check.CLIENT_ECHO, Finding.CLIENT_SENT_STDIN, True, span, values)
    if sent == stdin.replace(b"\n", b"") and sent:
        values["count"] = len(sent)
        return Verdict(Check.CLIENT_ECHO, Finding.CLIENT_SENT_WITHOUT_NEWLINES, True, span,
                       values)
    if stdin.startswith(sent):
        last = nos[-1] if nos else (mine[0].no if mine else 0)
        return Verdict(Check.CLIENT_ECHO, Finding.CLIENT_SENT_PART, False,
                       (last,) if last else (),
                       {"count": len(sent), "total": len(stdin), "packet": last,
                        "missing_hex": hex_bytes(stdin[len(sent):])})
    diffs = compare_echo(stdin, sent)
    at = diffs[0].got_at if diffs else 0
    packet = client.packet_at(at)
    return Verdict(Check.CLIENT_ECHO, Finding.CLIENT_SENT_DIFFERENT, False, (packet,),
                   {"offset": at, "packet": packet, "sent_hex": hex_bytes(sent[at:]),
                    "stdin_hex": hex_bytes(stdin[at:])})


def judge_read(mine: Sequence[Annotated], server: Side) -> Verdict | None:
    """Did the client wait for the whole echo before it closed (FIN or RST)?"""
    if not server.data:
        return None
    end = next((a for a in mine if a.from_client and a.packet.flags & (FIN | RST)), None)
    later = [a for a in mine if end is not None and a.no > end.no and not a.from_client
             and a.packet.payload_len]
    if end is not None and later:
        got = sum(a.packet.payload_len for a in mine
                  if not a.from_client and a.no < end.no)
        flag = "RST" if end.packet.flags & RST else "FIN"
        return Verdict(Check.CLIENT_ECHO, Finding.CLIENT_CLOSED_EARLY, False,
                       (end.no, *(a.no for a in later[:5])),
                       {"flag": flag, "packet": end.no, "got": got, "count": len(server.data),
                        "first": later[0].no})
    return Verdict(Check.CLIENT_ECHO, Finding.CLIENT_READ_ALL, True,
                   (server.packets[0], server.packets[-1]),
                   {"count": len(server.data), "segments": len(server.packets),
                    "first": server.packets[0], "last": server.packets[-1]})


def judge_client_close(mine: Sequence[Annotated], run: ScenarioRun) -> Verdict:
    """Once stdin ended: a FIN (not an RST), and the program gone."""
    rst = first_with(mine, True, RST)
    fin = first_with(mine, True, FIN)
    last = mine[-1].no
    values: dict[str, object] = {"packet": rst or fin or last, "seconds": _seconds(run),
                                 "status": _status(run)}
    if rst:
        return Verdict(Check.CLIENT_CLOSE, Finding.CLIENT_RESET, False, (rst,), values)
    if not fin:
        return Verdict(Check.CLIENT_CLOSE, Finding.CLIENT_NO_CLOSE, False, (last,), values)
    if run.client_status is None:
        return Verdict(Check.CLIENT_CLOSE, Finding.CLIENT_HUNG, False, (fin,), values)
    if run.client_status != 0:
        return Verdict(Check.CLIENT_CLOSE, Finding.CLIENT_FAILED, False, (fin,), values)
    return Verdict(Check.CLIENT_CLOSE, Finding.CLIENT_CLOSED_BY_FIN, True, (fin,), values)


def judge_server_closes(mine: Sequence[Annotated], run: ScenarioRun) -> Verdict:
    """sockcap's server closed without answering: did the client stop and say so?"""
    fin = first_with(mine, False, FIN)
    return _stopped(run, Check.CLIENT_SERVER_CLOSES, fin,
                    (Finding.CLIENT_NOTICED_CLOSE, Finding.CLIENT_IGNORED_CLOSE,
                     Finding.CLIENT_SILENT_CLOSE, Finding.CLIENT_UNEXPLAINED_CLOSE))


def judge_refused(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """Nothing listened: the client's SYN answered by an RST. Did it stop and say so?"""
    syns = [a for a in packets if a.from_client and a.packet.flags & SYN
            and a.packet.dport == run.port]
    if not syns:
        return [never_connected(run, Check.CLIENT_REFUSED)]
    rst = next((a.no for a in packets if a.packet.flags & RST and a.packet.sport == run.port), 0)
    verdict = _stopped(run, Check.CLIENT_REFUSED, rst or syns[0].no,
                       (Finding.CLIENT_NOTICED_REFUSED, Finding.CLIENT_HUNG_REFUSED,
                        Finding.CLIENT_SILENT_REFUSED, Finding.CLIENT_UNEXPLAINED_REFUSED))
    return [Verdict(verdict.check, verdict.finding, verdict.ok, verdict.packets,
                    {**verdict.values, "attempts": len(syns)})]


def _stopped(run: ScenarioRun, check: Check, packet: int,
             findings: tuple[Finding, Finding, Finding, Finding]) -> Verdict:
    """Stopped with a non-zero status and a word (ok), still running, exited 0, or silent."""
    noticed, kept_running, exited_zero, silent = findings
    values: dict[str, object] = {"packet": packet, "seconds": _seconds(run),
                                 "status": _status(run)}
    nos = (packet,) if packet else ()
    if run.client_status is None:
        return Verdict(check, kept_running, False, nos, values)
    if run.client_status == 0:
        return Verdict(check, exited_zero, False, nos, values)
    if not run.client_said:
        return Verdict(check, silent, False, nos, values)
    return Verdict(check, noticed, True, nos, values)


def _status(run: ScenarioRun) -> str:
    return "" if run.client_status is None else str(run.client_status)


def _seconds(run: ScenarioRun) -> str:
    return f"{run.client_seconds:g}"
