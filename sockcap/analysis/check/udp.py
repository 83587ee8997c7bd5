"""Judging UDP as it really is: two clients at once, a datagram larger than the MTU, a
link that loses datagrams, duplicates replies or lets them overtake one another. Pure,
like :mod:`sockcap.analysis.check.server`.

The packets come from one host's interface in the lab's network (two hosts, a link
between them, MTU 1500): the server's host for the server's scenarios, the client's
host for the client's (what it sent, and what reached it). A datagram larger than the
MTU is on the wire as IP fragments; the first fragment's UDP header gives the whole
datagram's length, which is what is compared (the bytes after the first fragment are
not reassembled here; the capture keeps the first fragments, which carry the ports).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sockcap.analysis.check.codes import Check, Finding, ScenarioRun, Verdict
from sockcap.analysis.check.streams import endpoint_text
from sockcap.analysis.conversation import Annotated
from sockcap.decode.records import IPPROTO_UDP

Address = tuple[str, int]
MTU = 1500  # the lab's hosts' eth0
IPV4_HEADER, UDP_HEADER = 20, 8


def datagrams(packets: Sequence[Annotated], run: ScenarioRun) -> list[Annotated]:
    """The UDP datagrams to or from the port within the scenario's span (first fragments)."""
    return [a for a in packets if run.start_ns <= a.packet.ts_ns <= run.end_ns
            and a.packet.proto == IPPROTO_UDP and a.packet.sport >= 0
            and run.port in (a.packet.sport, a.packet.dport)]


def _source(a: Annotated) -> Address:
    return (a.packet.src, a.packet.sport)


def _destination(a: Annotated) -> Address:
    return (a.packet.dst, a.packet.dport)


def loopback_only(run: ScenarioRun, check: Check) -> list[Verdict]:
    """The server's socket is bound to a loopback address: from another host, nothing
    reaches it (the edge sends nothing then, and says where it was bound)."""
    bound = run.values.get("bound")
    if not bound:
        return []
    return [Verdict(check, Finding.UDP_LOOPBACK_ONLY, False, (),
                    {"address": bound, "port": run.port})]


def judge_udp_clients(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """Two clients took turns: each request must be answered at its own address."""
    bound = loopback_only(run, Check.UDP_CLIENTS)
    if bound:
        return bound
    udp = datagrams(packets, run)
    requests = [a for a in udp if a.packet.dport == run.port]
    clients = list(dict.fromkeys(_source(a) for a in requests))
    if len(clients) < 2:
        return [Verdict(Check.UDP_CLIENTS, Finding.NOTHING_CAPTURED, False, (), {"port": run.port})]
    first, second = clients[0], clients[1]
    answers: dict[int, Annotated] = {}  # request packet -> the reply that followed it
    pending: Annotated | None = None
    for a in udp:
        if a.packet.dport == run.port:
            pending = a
        elif pending is not None and a.packet.sport == run.port:
            answers[pending.no] = a
            pending = None
    theirs = [r for r in requests if _source(r) == second]
    misplaced = [(r, answers[r.no]) for r in theirs
                 if r.no in answers and _destination(answers[r.no]) != second]
    if misplaced:
        request, reply = misplaced[0]
        got = _destination(reply)
        return [Verdict(Check.UDP_CLIENTS, Finding.UDP_FIRST_ADDRESS if got == first
                        else Finding.UDP_WRONG_DESTINATION, False, (request.no, reply.no),
                        {"request": request.no, "packet": reply.no, "got": endpoint_text(*got),
                         "want": endpoint_text(*second), "count": len(misplaced)})]
    unanswered = [r for r in theirs if r.no not in answers]
    mine = [r for r in requests if _source(r) == first]
    if unanswered and len(unanswered) == len(theirs) and all(r.no in answers for r in mine):
        return [Verdict(Check.UDP_CLIENTS, Finding.UDP_FIRST_ONLY, False,
                        tuple(r.no for r in unanswered[:6]),
                        {"count": len(unanswered), "first": unanswered[0].no,
                         "client": endpoint_text(*second), "served": endpoint_text(*first)})]
    if unanswered:
        return [Verdict(Check.UDP_CLIENTS, Finding.UDP_NO_REPLY, False, (unanswered[0].no,),
                        {"count": unanswered[0].packet.payload_len, "packet": unanswered[0].no})]
    return [Verdict(Check.UDP_CLIENTS, Finding.UDP_CLIENTS_SERVED, True,
                    (requests[0].no, udp[-1].no),
                    {"count": len(requests), "first": requests[0].no, "last": udp[-1].no})]


def fragments_of(a: Annotated, mtu: int = MTU) -> int:
    """How many IP fragments carried a datagram whose first fragment is ``a`` (the capture
    keeps first fragments only: the others carry no ports)."""
    if not a.packet.fragment:
        return 1
    return -(-(a.packet.payload_len + UDP_HEADER) // (mtu - IPV4_HEADER))


def judge_udp_large(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """A datagram larger than the MTU (fragments on the wire) must come back whole."""
    bound = loopback_only(run, Check.UDP_LARGE)
    if bound:
        return bound
    udp = datagrams(packets, run)
    request = next((a for a in udp if a.packet.dport == run.port), None)
    if request is None:
        return [Verdict(Check.UDP_LARGE, Finding.NOTHING_CAPTURED, False, (), {"port": run.port})]
    fragments = fragments_of(request)
    reply = next((a for a in udp if a.no > request.no and a.packet.sport == run.port), None)
    values: dict[str, object] = {"request": request.no, "size": request.packet.payload_len,
                                 "fragments": max(fragments, 1)}
    if reply is None:
        return [Verdict(Check.UDP_LARGE, Finding.UDP_NO_REPLY, False, (request.no,),
                        {"count": request.packet.payload_len, "packet": request.no})]
    values |= {"packet": reply.no, "got": reply.packet.payload_len}
    if reply.packet.payload_len < request.packet.payload_len:
        return [Verdict(Check.UDP_LARGE, Finding.UDP_LARGE_CUT, False, (request.no, reply.no),
                        values)]
    return [Verdict(Check.UDP_LARGE, Finding.UDP_LARGE_WHOLE,
                    reply.packet.payload_len == request.packet.payload_len,
                    (request.no, reply.no), values)]


def judge_udp_client_duplicates(packets: Sequence[Annotated],
                                run: ScenarioRun) -> list[Verdict]:
    """Late duplicates of earlier replies came first: did the client wait for the reply to
    each message before it sent the next, or take the duplicate for it?"""
    udp = datagrams(packets, run)
    requests = [a for a in udp if a.packet.dport == run.port]
    if not requests:
        return [Verdict(Check.CLIENT_DUPLICATES, Finding.CLIENT_UDP_NOTHING, False, (),
                        {"port": run.port})]
    firsts = [r for i, r in enumerate(requests)
              if i == 0 or r.packet.payload != requests[i - 1].packet.payload]  # resends aside
    replies = [a for a in udp if a.packet.sport == run.port]
    for i, (sent, following) in enumerate(itertools.pairwise(firsts), 1):
        answered = any(sent.no < r.no < following.no and r.packet.payload == sent.packet.payload
                       for r in replies)
        if not answered:
            stale = max((r for r in replies if r.no < following.no), key=lambda r: r.no,
                        default=None)
            nos = tuple(n for n in (sent.no, stale.no if stale else 0, following.no) if n)
            return [Verdict(Check.CLIENT_DUPLICATES, Finding.CLIENT_UDP_TOOK_DUPLICATE, False,
                            nos, {"message": i, "packet": sent.no, "next": following.no,
                                  "duplicate": stale.no if stale else 0})]
    return [Verdict(Check.CLIENT_DUPLICATES, Finding.CLIENT_UDP_WAITED_FOR_ITS_REPLY, True,
                    (firsts[0].no, udp[-1].no),
                    {"count": len(firsts), "duplicates": max(0, len(replies) - len(firsts)),
                     "first": firsts[0].no, "last": udp[-1].no})]


def judge_udp_client_loss(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """The student's client over a link that loses datagrams, seen from the client's host:
    a request with no reply after it was lost (or its reply was). Did the client send
    again, or stop and say so, rather than wait for ever?"""
    udp = datagrams(packets, run)
    requests = [a for a in udp if a.packet.dport == run.port]
    values: dict[str, object] = {"port": run.port, "seconds": f"{run.client_seconds:g}",
                                 "status": "" if run.client_status is None else run.client_status}
    if not requests:
        return [Verdict(Check.CLIENT_TIMEOUT, Finding.CLIENT_UDP_NOTHING, False, (), values)]
    lost = [r for i, r in enumerate(requests)
            if not any(a.packet.sport == run.port and a.no > r.no
                       and (i + 1 == len(requests) or a.no < requests[i + 1].no) for a in udp)]
    resent = [r for i, r in enumerate(requests[1:], 1)
              if r.packet.payload == requests[i - 1].packet.payload]
    nos = tuple(r.no for r in (lost[:1] + resent[:3]))
    values |= {"packet": lost[0].no if lost else requests[-1].no, "resent": len(resent),
               "lost": len(lost)}
    if run.client_status is None:
        finding, ok = Finding.CLIENT_UDP_NO_TIMEOUT, False
    elif run.client_status != 0:
        finding, ok = Finding.CLIENT_UDP_GAVE_UP, run.client_said
    elif lost and not resent:
        finding, ok = Finding.CLIENT_UDP_SILENT, False
    else:
        finding, ok = Finding.CLIENT_UDP_RESENT, True
    return [Verdict(Check.CLIENT_TIMEOUT, finding, ok, nos or (requests[-1].no,), values)]


def judge_udp_client_reorder(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """Every second reply overtook the one before it on the link: did the client print the
    replies in the order of its messages (stop-and-wait, or matching each reply to its
    message), or in the order they arrived, as if UDP kept order?

    A client with one message in flight at a time never sees two replies cross, so it
    passes without its output being read. When replies did cross on the client's wire,
    its stdout (``run.values["stdout"]``) is read line by line: a line is taken for the
    message whose text it holds (the longest such message), and the order in which the
    messages first show up must be the order they were sent in."""
    udp = datagrams(packets, run)
    requests = [a for a in udp if a.packet.dport == run.port]
    if not requests:
        return [Verdict(Check.CLIENT_REORDER, Finding.CLIENT_UDP_NOTHING, False, (),
                        {"port": run.port})]
    messages = list(dict.fromkeys(r.packet.payload for r in requests))  # resends aside
    index = {m: i for i, m in enumerate(messages)}
    replies = list({a.packet.payload: a for a in reversed(udp)
                    if a.packet.sport == run.port and a.packet.payload in index}.values())
    replies.sort(key=lambda a: a.no)  # the first reply to each message (a late copy of an
    # old reply, after a client's resend, is the duplicates scenario's business)
    crossed = next(((first, second) for first, second in itertools.combinations(replies, 2)
                    if index[first.packet.payload] > index[second.packet.payload]), None)
    if crossed is None:
        return [Verdict(Check.CLIENT_REORDER, Finding.CLIENT_UDP_ONE_IN_FLIGHT, True,
                        (requests[0].no, udp[-1].no),
                        {"count": len(messages), "first": requests[0].no, "last": udp[-1].no})]
    first, second = crossed  # ``first`` arrived first and answers the later message
    values: dict[str, object] = {"later": index[first.packet.payload] + 1, "packet": first.no,
                                 "earlier": index[second.packet.payload] + 1,
                                 "other": second.no}
    nos = (first.no, second.no)
    stdout = run.values.get("stdout", b"")
    shown = printed_order(stdout if isinstance(stdout, bytes) else b"", messages)
    missing = [i for i in range(len(messages)) if i not in shown]
    if missing:
        reply = next((r.no for r in replies if index[r.packet.payload] == missing[0]), 0)
        return [Verdict(Check.CLIENT_REORDER, Finding.CLIENT_UDP_REPLY_NOT_SHOWN, False,
                        (reply,) if reply else nos,
                        values | {"message": missing[0] + 1, "reply": reply})]
    if shown == sorted(shown):
        return [Verdict(Check.CLIENT_REORDER, Finding.CLIENT_UDP_KEPT_ORDER, True, nos, values)]
    return [Verdict(Check.CLIENT_REORDER, Finding.CLIENT_UDP_ASSUMED_ORDER, False, nos,
                    values | {"printed": " ".join(str(i + 1) for i in shown)})]


def printed_order(stdout: bytes, messages: Sequence[bytes]) -> list[int]:
    """The messages (by index) in the order their text first shows up in ``stdout``, one
    line at a time; a line holding none of them is passed over."""
    texts = [m.rstrip(b"\r\n") for m in messages]
    order: list[int] = []
    for line in stdout.splitlines():
        held = [i for i, t in enumerate(texts) if t and t in line]
        if held:
            i = max(held, key=lambda k: len(texts[k]))
            if i not in order:
                order.append(i)
    return order
