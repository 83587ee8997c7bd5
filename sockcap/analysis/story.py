"""Calls and kernel events tied to the packets, and the one time-ordered stream of all
three that the views consume (pure).

:func:`tie_calls` gives each call its conversation (by the socket's two addresses, as
``strace -yy`` or the endpoint recorded them) and the packets it caused or that caused
it: a send's bytes are found on the wire by their place in the byte stream (the n-th
byte written on a socket is the n-th byte of its direction, relative sequence number
n + 1), a recv's bytes the same way in the other direction, a recv that returned 0 by
the peer's FIN, a connect by its SYN and the answer (SYN-ACK or RST), a close or
shutdown by the FIN or RST it sent. UDP datagrams are matched in order.

:func:`tie_kernel` gives each kernel event its conversation and side (by its addresses;
a SYN_SENT before the port is chosen, by the next SYN to its peer) and its packet: a
state change caused by a packet received, the last packet to that side before it; one
caused by sending (SYN_SENT, FIN_WAIT1, LAST_ACK), the next packet from that side. A
drop has no addresses: it is tied to the packet captured last before it, within
:data:`DROP_WINDOW_NS`, and left out when there is none (another program's traffic).

:func:`story` merges all three by time: a call is placed where it began; a call that
waits for the peer (connect, accept, recv, poll) and saw packets arrive meanwhile is
placed twice, where it began and where it returned.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import NamedTuple

from sockcap.analysis.calls import WAITING_KINDS, Call, CallKind
from sockcap.analysis.conversation import Annotated, Conversation
from sockcap.decode.ftrace import KernelEvent, KernelEventKind
from sockcap.decode.records import TcpFlags

FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))
DROP_WINDOW_NS = 100_000  # a drop is tied to a packet captured at most this long before
RESET_WINDOW_NS = 100_000  # ... to the RST sent for the same buffer at most this long before
CLOCK_SLACK_NS = 200_000  # a call's recorded time may be this far from its packets'
KERNEL_SLACK_NS = 5_000  # a kernel event's: the trace prints µs, mapped within a few µs
SENDING_STATES = frozenset(("SYN_SENT", "FIN_WAIT1", "LAST_ACK"))
IPPROTO_UDP = 17


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ends(conv: Conversation) -> tuple[str, str]:
    return _address(*conv.client), _address(*conv.server)


class _Index:
    """The conversations of a capture by their two ends, and their packets."""

    def __init__(self, annotated: Sequence[Annotated]) -> None:
        self.by_ends: dict[tuple[str, str], tuple[Conversation, bool]] = {}
        self.packets: dict[int, list[Annotated]] = {}
        self.times = [a.packet.ts_ns for a in annotated]
        self.annotated = annotated
        for a in annotated:
            if a.conv is None:
                continue
            if a.conv.stream not in self.packets:
                client, server = _ends(a.conv)
                self.by_ends[(client, server)] = (a.conv, True)
                self.by_ends[(server, client)] = (a.conv, False)
                self.packets[a.conv.stream] = []
            self.packets[a.conv.stream].append(a)

    def find(self, local: str, remote: str, after: int) -> tuple[Conversation, bool] | None:
        """The conversation with these ends (``local`` may be unknown: then the first
        conversation to ``remote`` that began at or after ``after``)."""
        if local and not local.endswith(":0"):
            return self.by_ends.get((local, remote))
        for (_client, b), (conv, from_client) in self.by_ends.items():
            if b == remote and from_client and conv.first_ts >= after - CLOCK_SLACK_NS:
                return conv, True
        return None


# --- calls --------------------------------------------------------------------------------

def tie_calls(calls: Iterable[Call], annotated: Sequence[Annotated]) -> list[Call]:
    """The calls with ``stream``, ``packets`` and their side (see the module docstring)."""
    index = _Index(annotated)
    offsets: dict[tuple[int, bool, CallKind], int] = {}
    tied = []
    for call in sorted(calls, key=lambda c: c.ts_ns):
        found = index.find(call.local, call.remote, call.ts_ns) if call.remote else None
        if found is None:
            tied.append(call)
            continue
        conv, mine = found  # mine: this socket is the conversation's client
        packets = index.packets[conv.stream]
        nos = _caused(call, conv, mine, packets, offsets)
        side = call.side if call.side not in ("", "program") else ("client" if mine else "server")
        tied.append(replace(call, stream=conv.stream, packets=tuple(nos), side=side))
    return tied


def _caused(call: Call, conv: Conversation, mine: bool, packets: list[Annotated],
            offsets: dict[tuple[int, bool, CallKind], int]) -> list[int]:
    kind = call.kind
    begin = call.ts_ns - CLOCK_SLACK_NS
    if kind in (CallKind.SEND, CallKind.RECV) and call.nbytes > 0:
        sending = kind is CallKind.SEND
        key = (conv.stream, mine, CallKind.SEND if sending else CallKind.RECV)
        start = offsets.get(key, 0)
        offsets[key] = start + call.nbytes
        direction = mine if sending else not mine
        if conv.proto == IPPROTO_UDP:
            datagrams = [a for a in packets if a.from_client == direction]
            count = offsets[key] // max(call.nbytes, 1)  # the n-th datagram of this call
            return [datagrams[count - 1].no] if 0 < count <= len(datagrams) else []
        lo, hi = start + 1, start + 1 + call.nbytes
        return [a.no for a in packets if a.from_client == direction and a.packet.payload_len
                and a.seq < hi and a.seq + a.packet.payload_len > lo]
    if kind is CallKind.RECV and call.nbytes == 0:
        return [a.no for a in packets if a.from_client != mine and a.packet.flags & FIN][:1]
    if kind is CallKind.CONNECT:  # a conversation has one connect: its SYNs and the answer
        answer = [a for a in packets if not a.from_client and a.packet.flags & (SYN | RST)][:1]
        last = answer[0].no if answer else packets[-1].no
        syns = [a.no for a in packets if a.from_client and a.packet.flags & (SYN | ACK) == SYN
                and a.no <= last]
        return syns + [a.no for a in answer]
    if kind is CallKind.ACCEPT:
        return [a.no for a in packets if a.phase.is_handshake]
    if kind in (CallKind.SHUTDOWN, CallKind.CLOSE):
        return [a.no for a in packets if a.from_client == mine and a.packet.flags & (FIN | RST)
                and a.packet.ts_ns >= begin][:1]
    return []


# --- kernel events ------------------------------------------------------------------------

def tie_kernel(events: Iterable[KernelEvent], annotated: Sequence[Annotated],
               listen_overflows: int = 0) -> list[KernelEvent]:
    """The events about the captured conversations, each with its side, stream and
    packet; drops tied by time. ``listen_overflows``: how many SYNs the namespace's
    listening sockets dropped at a full accept queue meanwhile (no tracepoint tells it):
    that many unanswered SYNs get a TCP_LISTEN_OVERFLOW drop, marked ``inferred``."""
    index = _Index(annotated)
    ports = {p for conv, _m in index.by_ends.values() for p in (conv.server[1],)}
    tied: list[KernelEvent] = []
    resets: dict[str, KernelEvent] = {}  # the last RST sent for each buffer
    for event in events:
        if event.kind is KernelEventKind.DROP:
            drop = _tie_drop(event, index, resets)
            if drop is not None:
                tied.append(drop)
            continue
        found = index.find(event.local, event.remote, event.ts_ns)
        if found is None:
            port = event.local.rpartition(":")[2]
            if event.kind is KernelEventKind.STATE and port.isdigit() and int(port) in ports:
                tied.append(replace(event, side="server"))  # the listening socket
            continue
        conv, mine = found
        nos = _about(event, mine, index.packets[conv.stream])
        tied.append(replace(event, side="client" if mine else "server", stream=conv.stream,
                            packets=nos))
        if event.kind is KernelEventKind.SEND_RESET and event.skb:
            resets[event.skb] = tied[-1]  # the packet it answered: the one then freed
    tied.extend(_overflows(index, listen_overflows, tied))
    return [_time_wait(e, index) for e in sorted(tied, key=lambda e: e.ts_ns)]


CLOSING_STATES = frozenset(("FIN_WAIT1", "FIN_WAIT2", "CLOSING"))


def _time_wait(event: KernelEvent, index: _Index) -> KernelEvent:
    """FIN_WAIT2 → CLOSE is how the kernel reports TIME_WAIT: it hands the connection to
    a small time-wait socket (tcp_time_wait) and closes the full one. Said as the
    textbook's TIME_WAIT, marked ``inferred``; after an RST it stays CLOSE."""
    if (event.kind is not KernelEventKind.STATE or event.new_state != "CLOSE"
            or event.old_state not in CLOSING_STATES or event.stream < 0):
        return event
    reset = any(a.packet.flags & RST and a.packet.ts_ns <= event.ts_ns + KERNEL_SLACK_NS
                for a in index.packets[event.stream])
    return event if reset else replace(event, new_state="TIME_WAIT", inferred=True)


def _about(event: KernelEvent, mine: bool, packets: list[Annotated]) -> tuple[int, ...]:
    if event.kind is KernelEventKind.STATE and event.new_state in SENDING_STATES:
        after = [a.no for a in packets if a.from_client == mine
                 and a.packet.ts_ns >= event.ts_ns - KERNEL_SLACK_NS]
        return tuple(after[:1])
    before = [a.no for a in packets if a.from_client != mine
              and a.packet.ts_ns <= event.ts_ns + KERNEL_SLACK_NS]
    return tuple(before[-1:])


def _tie_drop(event: KernelEvent, index: _Index,
              resets: dict[str, KernelEvent]) -> KernelEvent | None:
    """The packet captured last before the drop (a packet is captured on its way in,
    before the stack can drop it; an answer the stack sent first, such as the RST to a
    SYN it then frees, is captured after), within :data:`DROP_WINDOW_NS`.

    ``kfree_skb`` has no addresses and fires for every program's packets, so a time alone
    would tie another program's drop to ours on a busy machine. A NO_SOCKET drop (the most
    common one: any packet to a closed port) is kept only when the kernel sent an RST for
    the same buffer on a watched port just before; the others must come within
    microseconds of a captured packet. A NO_SOCKET drop is of the packet the RST answered
    (the stack sends the RST, then frees the packet: the RST is captured first)."""
    if event.reason == "NO_SOCKET":
        reset = resets.get(event.skb)
        if reset is None or not 0 <= event.ts_ns - reset.ts_ns <= RESET_WINDOW_NS:
            return None
        return replace(event, side=reset.side, stream=reset.stream, packets=reset.packets)
    i = bisect_right(index.times, event.ts_ns)
    if i == 0:
        return None
    a = index.annotated[i - 1]
    if event.reason == "TCP_LISTEN_OVERFLOW":  # only a client's SYN meets a full queue:
        syn = _last_syn(index, i, event.ts_ns)  # not the server's answer to another one
        if syn is None:  # none captured just before: not ours to name (the namespace's
            return None  # counter still names the SYNs nobody answered: _overflows)
        a = syn
    if event.ts_ns - a.packet.ts_ns > DROP_WINDOW_NS or a.conv is None:
        return None
    return replace(event, side="client" if not a.from_client else "server",
                   stream=a.conv.stream, packets=(a.no,))


def _last_syn(index: _Index, i: int, ts_ns: int) -> Annotated | None:
    """The client SYN captured last before ``index.annotated[i]`` within
    :data:`DROP_WINDOW_NS` of ``ts_ns`` (a busy burst interleaves SYN-ACKs with SYNs)."""
    while i > 0:
        i -= 1
        a = index.annotated[i]
        if ts_ns - a.packet.ts_ns > DROP_WINDOW_NS:
            return None
        if a.from_client and a.packet.flags & (SYN | ACK) == SYN:
            return a
    return None


def _overflows(index: _Index, count: int, tied: list[KernelEvent]) -> list[KernelEvent]:
    """TCP_LISTEN_OVERFLOW for the first ``count`` SYNs that got no answer."""
    if count <= 0:
        return []
    named = {n for e in tied if e.kind is KernelEventKind.DROP for n in e.packets}
    found = []
    for stream, packets in index.packets.items():
        for i, a in enumerate(packets):
            if not a.from_client or a.packet.flags & (SYN | ACK) != SYN or a.no in named:
                continue
            answered = any(not b.from_client for b in packets[i + 1:i + 2])
            if not answered:
                found.append(KernelEvent(a.packet.ts_ns, KernelEventKind.DROP, side="server",
                                         reason="TCP_LISTEN_OVERFLOW", stream=stream,
                                         packets=(a.no,), inferred=True))
    found.sort(key=lambda e: e.ts_ns)
    return found[:count]


# --- the merged stream --------------------------------------------------------------------

class Moment(enum.Enum):
    """Where in a call's life a line of the story stands."""

    WHOLE = "whole"  # began and returned with no packet from the peer between
    BEGUN = "begun"
    RETURNED = "returned"


class Entry(NamedTuple):
    """One line of the story: a packet, a call (at a moment) or a kernel event."""

    ts_ns: int
    packet: Annotated | None = None
    call: Call | None = None
    moment: Moment = Moment.WHOLE
    event: KernelEvent | None = None


def story(annotated: Sequence[Annotated], calls: Sequence[Call] = (),
          events: Sequence[KernelEvent] = ()) -> list[Entry]:
    """Packets, calls and kernel events in one list ordered by time (ties: a call before
    the packets of the same instant, a kernel event after them)."""
    times = [a.packet.ts_ns for a in annotated]
    by_no = {a.no: a for a in annotated}
    keyed: list[tuple[int, int, int, Entry]] = [
        (a.packet.ts_ns, 1, i, Entry(a.packet.ts_ns, packet=a)) for i, a in enumerate(annotated)]
    for i, call in enumerate(placed(c, by_no) for c in calls):
        if call.kind in WAITING_KINDS and _peer_packet_between(call, annotated, times):
            keyed.append((call.ts_ns, 0, i, Entry(call.ts_ns, call=call, moment=Moment.BEGUN)))
            keyed.append((call.returned_ns, 0, i,
                          Entry(call.returned_ns, call=call, moment=Moment.RETURNED)))
        else:
            keyed.append((call.ts_ns, 0, i, Entry(call.ts_ns, call=call)))
    for i, event in enumerate(events):
        keyed.append((event.ts_ns, 2, i, Entry(event.ts_ns, event=event)))
    keyed.sort(key=lambda k: k[:3])
    return [k[3] for k in keyed]


def placed(call: Call, by_no: dict[int, Annotated]) -> Call:
    """The call with its times made to agree with its packets: it begins no later than
    the first packet it caused, and a call that waited returns no earlier than the last
    packet it waited for.

    Why: strace reads the clock itself, when it handles the stop, not when the kernel
    runs the call; on a busy machine the program may run the call milliseconds after
    the time strace wrote (measured with tcpdump beside it: a write() stamped 8 ms
    before its segment left). The ties to the packets (by bytes and flags) are exact,
    so they decide the order where the clocks disagree."""
    if not call.packets:
        return call
    tied = [by_no[n] for n in call.packets if n in by_no]
    if call.kind in WAITING_KINDS and call.kind is not CallKind.WAIT:
        mine = _own_packets(call, tied)
        waited = [a.packet.ts_ns for a in tied if a not in mine]
        if waited and max(waited) > call.returned_ns:
            call = replace(call, end_ns=max(waited) + 1)
        sent = [a.packet.ts_ns for a in mine]
        if sent and min(sent) < call.ts_ns:
            call = replace(call, ts_ns=min(sent) - 1)
    elif tied:
        first = min(a.packet.ts_ns for a in tied)
        if first < call.ts_ns:
            call = replace(call, ts_ns=first - 1, end_ns=max(call.end_ns, first - 1))
    return call


def _own_packets(call: Call, tied: list[Annotated]) -> list[Annotated]:
    """The tied packets this call sent (a connect's SYN); the rest it waited for."""
    if call.kind is CallKind.CONNECT:
        return [a for a in tied if a.packet.flags & (SYN | ACK) == SYN]
    return []


def _peer_packet_between(call: Call, annotated: Sequence[Annotated], times: list[int]) -> bool:
    """Whether a packet came in between the call's start and its return."""
    if call.end_ns < 0:
        return False
    lo, hi = bisect_right(times, call.ts_ns), bisect_right(times, call.end_ns)
    return hi > lo


# --- a call's error and the kernel's event behind it ----------------------------------------

RESET_ERRORS = frozenset(("ECONNREFUSED", "ECONNRESET", "EPIPE"))
"""Errors an RST from the peer causes: a refused connect(), a recv() or send() on a
connection the peer reset, a send() after it (the second write to a reset socket, or the
first where the RST came in CLOSE_WAIT)."""


def error_events(call: Call, events: Sequence[KernelEvent]) -> list[KernelEvent]:
    """The kernel's events that made ``call`` fail, among tied ``events``: for an error an
    RST causes, the ``tcp_receive_reset`` of the same connection and side, the last
    before the call returned; for ETIMEDOUT, every ``tcp_retransmit_skb`` of that side
    before it returned (the SYN or the data sent again and never acknowledged)."""
    if not call.error or call.stream < 0:
        return []
    # the same connection and side decide (it has one RST received at most); the time
    # only keeps events after the call out, with the slack of strace's clock, which may
    # stamp the return before the kernel's event that caused it
    end = call.returned_ns + CLOCK_SLACK_NS

    def mine(e: KernelEvent, kind: KernelEventKind) -> bool:
        return (e.kind is kind and e.stream == call.stream and e.side == call.side
                and e.ts_ns <= end)

    if call.error in RESET_ERRORS:
        return [e for e in events if mine(e, KernelEventKind.RECEIVE_RESET)][-1:]
    if call.error == "ETIMEDOUT":
        return [e for e in events if mine(e, KernelEventKind.RETRANSMIT)]
    return []


def failed_calls(event: KernelEvent, calls: Sequence[Call],
                 events: Sequence[KernelEvent]) -> list[Call]:
    """The calls ``event`` made fail (the other way round of :func:`error_events`)."""
    return [c for c in calls if c.error and event in error_events(c, events)]
