"""Judging a student's echo server from the wire: findings tied to packet numbers.

Pure: the annotated packets of one capture and what the edge ran
(:class:`~sockcap.analysis.check.codes.ScenarioRun`: a time span, the kind of exchange,
and what it saw of the server process) come in;
:class:`~sockcap.analysis.check.codes.Verdict` records come out. The byte streams and
their comparison are :mod:`sockcap.analysis.check.streams`.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence

from sockcap.analysis.check.codes import (
    FIN,
    RST,
    SYN,
    Check,
    Finding,
    Scenario,
    ScenarioRun,
    Verdict,
)
from sockcap.analysis.check.streams import (
    Difference,
    Side,
    answered_syn,
    compare_echo,
    conversations_in,
    endpoint_text,
    first_with,
    hex_bytes,
    own,
    streams,
)
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.codes import Note, note_kind
from sockcap.decode.records import IPPROTO_UDP

BUSY_SHARE = 0.1  # CPU time over wall time after the client left that counts as spinning (an idle server: ~0)


_KILLED_BY = {"output": Finding.KILLED_OUTPUT, "memory": Finding.KILLED_MEMORY,
              "cpu": Finding.KILLED_CPU}


def not_listening(run: ScenarioRun) -> Verdict:
    """What a server that never listened did instead: still running, exited, or killed
    (by a limit, named)."""
    values = {"port": run.port, "seconds": f"{run.start_seconds:g}", "status": run.exit_status,
              **run.values}
    if run.exit_status is None:
        finding = Finding.NOT_LISTENING
    elif run.exit_status >= 0:
        finding = Finding.EXITED
    else:
        finding = _KILLED_BY.get(run.limit, Finding.KILLED)
    return Verdict(Check.LISTEN, finding, False, (), values)


def judge_server(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """The verdicts on one scenario, from its packets alone.

    Only packets inside the scenario's span count: the edge ends the span before it stops
    the server, so the FIN or RST the kernel sends for a stopped program's sockets is
    never taken for something the server did. For the same reason every fact is read from
    these packets and not from a :class:`Conversation`'s running state, which has seen the
    whole capture."""
    if not run.listening:
        return [not_listening(run)]
    packets = [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns]
    convs = conversations_in(packets, run)
    if not convs:
        return [Verdict(_CHECK_OF[run.scenario], Finding.NOTHING_CAPTURED, False, (),
                        {"port": run.port})]
    if run.scenario is Scenario.CONCURRENT:
        return judge_concurrent(packets, convs)
    if run.scenario is Scenario.BURST:
        return judge_burst(packets, convs)
    check = _CHECK_OF[run.scenario]
    if convs[0].proto == IPPROTO_UDP:
        return judge_datagrams(packets, run, check)
    probe = run.probe if run.scenario is Scenario.ECHO else ()
    verdicts = judge_echo(packets, convs[0], check, probe)
    if run.scenario is Scenario.ECHO and run.least_bytes:
        verdicts = [*cut_short(packets, convs[0], run.least_bytes, check), *verdicts]
    if run.scenario is Scenario.ECHO:
        verdicts += judge_close(packets, convs[0], run)
    return verdicts


_CHECK_OF = {Scenario.ECHO: Check.ECHO, Scenario.PARTIAL: Check.PARTIAL,
             Scenario.LARGE: Check.LARGE, Scenario.CONCURRENT: Check.CONCURRENT,
             Scenario.BURST: Check.BACKLOG}


def judge_echo(packets: Sequence[Annotated], conv: Conversation, check: Check,
               probe: Sequence[bytes] = ()) -> list[Verdict]:
    """Did everything the client had to send go out, and come back byte for byte, each
    message answered before the next one?"""
    mine = own(packets, conv)
    problem = connection_problem(mine, conv, check)
    if problem is not None:
        return [problem]
    client, server = streams(mine, conv)
    verdicts = [v for v in (unsent_probe(mine, client, probe, check),) if v is not None]
    if not server.data:
        if verdicts:
            return verdicts
        first = next((a.no for a in mine if a.from_client and a.packet.payload_len), 0)
        return [Verdict(check, Finding.NO_REPLY, False, (first,),
                        {"count": len(client.data), "packet": first})]
    diffs = compare_echo(bytes(client.data), bytes(server.data))
    if diffs:
        return verdicts + [difference_verdict(d, client, server, check) for d in diffs]
    if verdicts:
        return verdicts
    late = late_answer(mine, client, server, probe, check)
    if late is not None:
        return [late]
    nos = (*client.packets, *server.packets)
    return [Verdict(check, Finding.ECHO_EXACT, True, (min(nos), max(nos)),
                    {"count": len(client.data), "first": min(nos), "last": max(nos)})]


def connection_problem(mine: Sequence[Annotated], conv: Conversation,
                       check: Check) -> Verdict | None:
    """Refused, or a SYN never answered: nothing to compare."""
    if conv.proto == IPPROTO_UDP or answered_syn(mine):
        return None
    rst = first_with(mine, False, RST)
    if rst:
        return Verdict(check, Finding.REFUSED, False, (rst,),
                       {"packet": rst, "port": conv.server[1]})
    syn = mine[0].no if mine else 0
    return Verdict(check, Finding.SYN_UNANSWERED, False, (syn,), {"packet": syn})


def message_ends(probe: Sequence[bytes]) -> list[int]:
    """Where each message ends in the client's stream."""
    return list(itertools.accumulate(len(m) for m in probe))


def unsent_probe(mine: Sequence[Annotated], client: Side, probe: Sequence[bytes],
                 check: Check) -> Verdict | None:
    """The client did not get to send every message: the server closed (or reset) first,
    or stopped reading."""
    ends = message_ends(probe)
    if not ends or len(client.data) >= ends[-1]:
        return None
    done = sum(1 for e in ends if e <= len(client.data))
    left = len(probe) - done
    closer = next((a for a in mine if not a.from_client and a.packet.flags & (FIN | RST)), None)
    last = client.packet_at(ends[done - 1] - 1) if done else 0
    if closer is None:
        return Verdict(check, Finding.NOT_ALL_SENT, False, tuple(client.packets[-1:]),
                       {"count": left, "message": done, "total": len(probe), "after": last})
    flag = "RST" if closer.packet.flags & RST else "FIN"
    return Verdict(check, Finding.CLOSED_EARLY, False,
                   tuple(sorted({n for n in (last, closer.no) if n})),
                   {"packet": closer.no, "flag": flag, "message": done, "total": len(probe),
                    "count": left, "after": last})


def cut_short(packets: Sequence[Annotated], conv: Conversation, least: int,
              check: Check) -> list[Verdict]:
    """The user's client, given messages on stdin, sent fewer bytes than they hold even
    without their newlines, and the server had closed (or reset) before it had."""
    mine = own(packets, conv)
    client, _server = streams(mine, conv)
    closer = next((a for a in mine if not a.from_client and a.packet.flags & (FIN | RST)), None)
    if len(client.data) >= least or closer is None:
        return []
    flag = "RST" if closer.packet.flags & RST else "FIN"
    nos = tuple(sorted({*client.packets[-1:], closer.no}))
    return [Verdict(check, Finding.CLIENT_CUT_SHORT, False, nos,
                    {"packet": closer.no, "flag": flag, "count": len(client.data),
                     "least": least})]


def early_close(client: Side, run: ScenarioRun) -> bool:
    """Whether the client still had bytes to send when the exchange ended."""
    ends = message_ends(run.probe)
    if ends:
        return len(client.data) < ends[-1]
    return len(client.data) < run.least_bytes


def late_answer(mine: Sequence[Annotated], client: Side, server: Side,
                probe: Sequence[bytes], check: Check) -> Verdict | None:
    """The first message whose echo came only after the client sent more (the next message,
    or its FIN): what the server needed before it answered."""
    ends = message_ends(probe)
    if not ends or len(server.data) < ends[-1]:
        return None
    said = [a for a in mine if a.from_client and (a.packet.payload_len or a.packet.flags & FIN)]
    for i, end in enumerate(ends):
        start = end - len(probe[i])
        reply = server.packet_at(start)
        sent = client.packet_at(end - 1)
        trigger = max((a for a in said if a.no < reply), key=lambda a: a.no, default=None)
        if trigger is None or trigger.no <= sent:
            continue
        values: dict[str, object] = {"message": i + 1, "sent": sent, "packet": reply,
                                     "after": trigger.no}
        nos = (sent, trigger.no, reply)
        if trigger.packet.payload_len == 0:
            return Verdict(check, Finding.ANSWERED_AFTER_FIN, False, nos, values)
        offset = client.starts[client.packets.index(trigger.no)] if trigger.no in client.packets else end
        values["next"] = bisect.bisect_right(ends, offset) + 1
        return Verdict(check, Finding.ANSWERED_AFTER_NEXT, False, nos, values)
    return None


def difference_verdict(d: Difference, client: Side, server: Side, check: Check) -> Verdict:
    """One place where the reply parts from the request; offsets are counted within the
    packet that carried the reply, so the byte can be found in that packet's hex."""
    sent_no = client.packet_at(max(0, d.sent_at - 1) if d.finding in _AFTER else d.sent_at)
    got_no = server.packet_at(d.got_at)
    values: dict[str, object] = {"client_packet": sent_no, "server_packet": got_no,
                                 "offset": d.got_at - server.start_of(got_no),
                                 "count": len(d.got) or len(d.sent),
                                 "sent_hex": hex_bytes(d.sent), "got_hex": hex_bytes(d.got)}
    if d.finding is Finding.ECHO_MISSING:
        nos = client.packets_between(d.sent_at, d.sent_at + len(d.sent))
    elif d.finding is Finding.ECHO_DIFFERENT:
        nos = (sent_no, got_no)
    else:
        nos = (sent_no, *server.packets_between(d.got_at, d.got_at + len(d.got)))
    return Verdict(check, d.finding, False, tuple(sorted(set(nos))), values)


_AFTER = (Finding.ECHO_EXTRA, Finding.ECHO_LEFTOVER)  # extra bytes follow the client's last


def judge_datagrams(packets: Sequence[Annotated], run: ScenarioRun,
                    check: Check) -> list[Verdict]:
    """UDP: each request datagram answered by the next datagram to the client.

    The request's two addresses are what a reply must swap; a datagram to the client from
    another address (the server answered from a new socket), or from the server's port to
    another address (it answered where recvfrom() did not say), is named as such. The
    addresses are read from the packets, across conversations, since a reply from or to
    the wrong address is a conversation of its own."""
    udp = [a for a in packets if a.packet.proto == IPPROTO_UDP]
    first = next((a for a in udp if a.packet.dport == run.port), None)
    if first is None:
        return [Verdict(check, Finding.NOTHING_CAPTURED, False, (), {"port": run.port})]
    client = (first.packet.src, first.packet.sport)
    server = (first.packet.dst, first.packet.dport)
    verdicts: list[Verdict] = []
    pending: Annotated | None = None
    count = 0
    for a in udp:
        src, dst = (a.packet.src, a.packet.sport), (a.packet.dst, a.packet.dport)
        if src == client and dst == server:
            if pending is not None:
                verdicts.append(_no_reply(pending, check))
            pending = a
            continue
        if pending is None:
            continue
        if src == server and dst == client:
            count += pending.packet.payload_len
            verdicts += _datagram_differences(pending, a, check)
        elif dst == client or src == server:
            wrong_source = dst == client
            got, want = (src, server) if wrong_source else (dst, client)
            verdicts.append(Verdict(
                check, Finding.UDP_WRONG_SOURCE if wrong_source else Finding.UDP_WRONG_DESTINATION,
                False, (pending.no, a.no),
                {"request": pending.no, "packet": a.no, "got": endpoint_text(*got),
                 "want": endpoint_text(*want)}))
        else:
            continue
        pending = None
    if pending is not None:
        verdicts.append(_no_reply(pending, check))
    if verdicts:
        return verdicts
    first_no, last_no = first.no, udp[-1].no
    return [Verdict(check, Finding.ECHO_EXACT, True, (first_no, last_no),
                    {"count": count, "first": first_no, "last": last_no})]


def _datagram_differences(request: Annotated, reply: Annotated, check: Check) -> list[Verdict]:
    sent, got = request.packet.payload, reply.packet.payload
    if sent == got:
        return []
    client, server = Side(), Side()
    client.add(sent, request.no)
    server.add(got, reply.no)
    diffs = compare_echo(sent, got) or [Difference(Finding.ECHO_DIFFERENT, 0, 0, sent, got)]
    return [difference_verdict(d, client, server, check) for d in diffs]


def _no_reply(a: Annotated, check: Check) -> Verdict:
    return Verdict(check, Finding.UDP_NO_REPLY, False, (a.no,),
                   {"count": a.packet.payload_len, "packet": a.no})


def judge_close(packets: Sequence[Annotated], conv: Conversation, run: ScenarioRun) -> list[Verdict]:
    """Who closed first, and how: the server's FIN after the client's (good), the server's
    FIN first (good once every message was answered, wrong before), an RST, or nothing
    within the time given (CLOSE_WAIT)."""
    mine = own(packets, conv)
    client_fin = first_with(mine, True, FIN)
    server_fin = first_with(mine, False, FIN)
    server_rst = first_with(mine, False, RST)
    verdicts: list[Verdict] = []
    late = [a for a in mine if client_fin and a.no > client_fin and not a.from_client
            and a.packet.payload_len > 0]
    client, server = streams(mine, conv)
    if len(server.data) <= len(client.data):
        late = []  # a late answer (the echo check says so), not bytes nobody asked for
    if late and not (server_fin and server_fin < client_fin):
        verdicts.append(Verdict(Check.CLOSE, Finding.DATA_AFTER_FIN, False,
                                (client_fin, *(a.no for a in late)),
                                {"count": sum(a.packet.payload_len for a in late),
                                 "fin": client_fin, "first": late[0].no}))
    if server_rst:
        verdicts.append(Verdict(Check.CLOSE, Finding.RESET_CLOSE, False, (server_rst,),
                                {"packet": server_rst}))
    elif server_fin and client_fin and server_fin > client_fin:
        if not late:
            verdicts.append(Verdict(Check.CLOSE, Finding.CLOSED_BY_FIN, True,
                                    (client_fin, server_fin),
                                    {"packet": server_fin, "fin": client_fin}))
    elif server_fin:
        early = early_close(client, run)
        values: dict[str, object] = {"packet": server_fin, "fin": client_fin}
        nos = tuple(n for n in (server_fin, client_fin) if n)
        verdicts.append(Verdict(Check.CLOSE, Finding.CLOSED_BEFORE_CLIENT if early
                                else Finding.CLOSED_FIRST, not early, nos, values))
    elif client_fin:
        verdicts.append(Verdict(Check.CLOSE, Finding.NO_CLOSE, False, (client_fin,),
                                {"fin": client_fin, "close_wait": run.close_wait,
                                 "seconds": f"{run.close_seconds or run.wait_ns / 1e9:g}"}))
    if client_fin and not server_fin and run.wait_ns and run.cpu_ns >= BUSY_SHARE * run.wait_ns:
        verdicts.append(Verdict(Check.CLOSE, Finding.BUSY_LOOP, False, (client_fin,),
                                {"fin": client_fin, "cpu": f"{run.cpu_ns / 1e9:.2f}",
                                 "seconds": f"{run.wait_ns / 1e9:.1f}"}))
    return verdicts


def judge_concurrent(packets: Sequence[Annotated], convs: Sequence[Conversation]) -> list[Verdict]:
    """A second client while the first stays connected: served, refused or starved."""
    first = own(packets, convs[0])
    if len(convs) < 2:
        return [Verdict(Check.CONCURRENT, Finding.NOTHING_CAPTURED, False, (), {"port": 0})]
    second = own(packets, convs[1])
    rst = first_with(second, False, RST)
    if rst and not answered_syn(second):
        return [Verdict(Check.CONCURRENT, Finding.SECOND_REFUSED, False, (second[0].no, rst),
                        {"packet": rst, "syn": second[0].no})]
    first_fin = first_with(first, True, FIN) or 1 << 62
    reply = next((a.no for a in second if not a.from_client and a.packet.payload_len), 0)
    asked = next((a.no for a in second if a.from_client and a.packet.payload_len), 0)
    if asked and (not reply or reply > first_fin):
        return [Verdict(Check.CONCURRENT, Finding.SECOND_STARVED, False,
                        tuple(n for n in (second[0].no, asked, reply) if n),
                        {"syn": second[0].no, "packet": asked, "reply": reply,
                         "fin": first_fin if first_fin < 1 << 62 else 0})]
    echo = judge_echo(packets, convs[1], Check.CONCURRENT)
    if not all(v.ok for v in echo):
        return echo
    return [Verdict(Check.CONCURRENT, Finding.SECOND_SERVED, True, (asked, reply),
                    {"packet": asked, "reply": reply})]


def judge_burst(packets: Sequence[Annotated], convs: Sequence[Conversation]) -> list[Verdict]:
    """Many connections at once: a SYN sent again, or never answered, is a full backlog."""
    again: list[int] = []
    convs_set = {id(c) for c in convs}
    answered: set[int] = set()
    for a in packets:
        if a.conv is None or id(a.conv) not in convs_set:
            continue
        if a.packet.flags & SYN and any(note_kind(n) in _AGAIN for n in a.notes):
            again.append(a.no)
        if not a.from_client and a.packet.flags & SYN:
            answered.add(id(a.conv))
    unanswered = len(convs) - len(answered)
    if again or unanswered:
        return [Verdict(Check.BACKLOG, Finding.BACKLOG_OVERFLOW, False, tuple(again[:20]),
                        {"count": len(convs), "again": len(again), "unanswered": unanswered,
                         "first": again[0] if again else 0})]
    return [Verdict(Check.BACKLOG, Finding.BURST_SERVED, True, (), {"count": len(convs)})]


_AGAIN = (Note.SYN_RETRANSMITTED, Note.RETRANSMISSION)
