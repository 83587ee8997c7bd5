"""Each end's TCP state (RFC 9293 3.3.2), inferred from the packets of one connection.

Pure and streaming: :class:`StateTracker` takes a connection's annotated packets in order
and says, for each, both ends' state after it and the transitions it caused. The
capture sees a packet once, where the sender's and the receiver's kernels each act on
it; on loopback both happen at that instant, so a packet moves its sender (a SYN sent:
SYN_SENT) and its receiver (a FIN received: CLOSE_WAIT) at once.

Inferred from the packets: an end that the capture saw only in the middle of a
connection starts ESTABLISHED; a server is taken to be LISTEN before the SYN (when an
RST refuses it, nothing listened: the RST leaves both ends CLOSED); a SYN-ACK's receiver
is ESTABLISHED when the SYN-ACK arrives (RFC 9293: it sends the ACK from there).

Recorded by the kernel: where the capture was made with ``--kernel``, the
``inet_sock_set_state`` events tied to the packets (:func:`sockcap.analysis.story.
tie_kernel`) replace the inference for the end they are about, and :class:`StateStep`
says which ends' states are the kernel's (``recorded``). They differ from the textbook
where Linux does: the listener keeps a SYN in a small request socket, so the server's
LISTEN → SYN_RCVD → ESTABLISHED both happen when the handshake's last ACK arrives, not
at the SYN; FIN_WAIT_2 → TIME_WAIT is the kernel handing the connection to a time-wait
socket (it reports FIN_WAIT2 → CLOSE; tie_kernel names it TIME_WAIT). An event the
tie found no packet for is placed at the connection's last packet captured before it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sockcap.analysis.conversation import Annotated
from sockcap.decode.ftrace import KernelEvent, KernelEventKind
from sockcap.decode.records import TcpFlags
from sockcap.i18n import N_

FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))


class TcpState(enum.Enum):
    """The textbook states (RFC 9293 3.3.2); the value is the name the books print."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RCVD = "SYN_RCVD"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"


S = TcpState

# The kernel's names (include/net/tcp_states.h, as inet_sock_set_state prints them without
# TCP_) for the textbook's states; NEW_SYN_RECV is the request socket of a SYN received.
KERNEL_STATES = {
    "CLOSE": S.CLOSED, "LISTEN": S.LISTEN, "SYN_SENT": S.SYN_SENT, "SYN_RECV": S.SYN_RCVD,
    "NEW_SYN_RECV": S.SYN_RCVD, "ESTABLISHED": S.ESTABLISHED, "FIN_WAIT1": S.FIN_WAIT_1,
    "FIN_WAIT2": S.FIN_WAIT_2, "CLOSE_WAIT": S.CLOSE_WAIT, "CLOSING": S.CLOSING,
    "LAST_ACK": S.LAST_ACK, "TIME_WAIT": S.TIME_WAIT,
}

# What moves an end from one state to the next (RFC 9293 figure 5), as the state
# diagram's arrows: (from, to) -> the event, in words.
EDGES: dict[tuple[TcpState, TcpState], str] = {
    (S.CLOSED, S.SYN_SENT): N_("connect(): send SYN"),
    (S.LISTEN, S.SYN_RCVD): N_("SYN received: send SYN-ACK"),
    (S.SYN_SENT, S.ESTABLISHED): N_("SYN-ACK received: send ACK"),
    (S.SYN_RCVD, S.ESTABLISHED): N_("ACK of the SYN received"),
    (S.ESTABLISHED, S.FIN_WAIT_1): N_("close(): send FIN"),
    (S.ESTABLISHED, S.CLOSE_WAIT): N_("FIN received: send ACK"),
    (S.FIN_WAIT_1, S.FIN_WAIT_2): N_("ACK of the FIN received"),
    (S.FIN_WAIT_1, S.CLOSING): N_("FIN received: send ACK"),
    (S.FIN_WAIT_1, S.TIME_WAIT): N_("FIN and the ACK of our FIN received"),
    (S.FIN_WAIT_2, S.TIME_WAIT): N_("FIN received: send ACK"),
    (S.CLOSE_WAIT, S.LAST_ACK): N_("close(): send FIN"),
    (S.CLOSING, S.TIME_WAIT): N_("ACK of the FIN received"),
    (S.LAST_ACK, S.CLOSED): N_("ACK of the FIN received"),
}


class Transition(NamedTuple):
    client: bool  # whose state changed
    before: TcpState
    after: TcpState


class StateStep(NamedTuple):
    """Both ends' state after one packet, and what the packet changed (in order: an end
    the kernel saw may pass through two states at one packet)."""

    client: TcpState
    server: TcpState
    transitions: tuple[Transition, ...]
    recorded: tuple[bool, bool] = (False, False)  # the client's, the server's: the kernel's


class StateTracker:
    """Both ends of one TCP connection; :meth:`see` each of its packets in order."""

    def __init__(self) -> None:
        self.states: list[TcpState] | None = None  # client, server (None: nothing seen)
        self.fin_end = [-1, -1]  # the sequence number after each end's FIN (-1: none)

    def see(self, a: Annotated) -> StateStep:
        p = a.packet
        flags = p.flags
        sender = 0 if a.from_client else 1
        receiver = 1 - sender
        if self.states is None:
            self.states = first_states(a)
        before = list(self.states)
        st = self.states
        if flags & RST:
            st[0] = st[1] = S.CLOSED
        elif flags & SYN:
            if not flags & ACK:
                st[sender] = S.SYN_SENT
                if st[receiver] is S.CLOSED:
                    st[receiver] = S.LISTEN
            else:
                st[sender] = S.SYN_RCVD
                if st[receiver] is S.SYN_SENT:
                    st[receiver] = S.ESTABLISHED
        else:
            if flags & ACK:
                self._acked(receiver, a.ack)
            if flags & FIN:
                self.fin_end[sender] = a.seq + p.payload_len + 1
                st[sender] = {S.ESTABLISHED: S.FIN_WAIT_1, S.SYN_RCVD: S.FIN_WAIT_1,
                              S.CLOSE_WAIT: S.LAST_ACK}.get(st[sender], st[sender])
                st[receiver] = {S.ESTABLISHED: S.CLOSE_WAIT, S.FIN_WAIT_1: S.CLOSING,
                                S.FIN_WAIT_2: S.TIME_WAIT}.get(st[receiver], st[receiver])
        changes = tuple(Transition(i == 0, before[i], st[i]) for i in (0, 1)
                        if before[i] is not st[i])
        return StateStep(st[0], st[1], changes)

    def _acked(self, end: int, ack: int) -> None:
        """``end`` receives an ACK for ``ack``: its SYN or its FIN may now be acknowledged."""
        assert self.states is not None
        st = self.states
        if st[end] is S.SYN_RCVD:
            st[end] = S.ESTABLISHED
        fin = self.fin_end[end]
        if fin >= 0 and ack >= fin:
            st[end] = {S.FIN_WAIT_1: S.FIN_WAIT_2, S.CLOSING: S.TIME_WAIT,
                       S.LAST_ACK: S.CLOSED}.get(st[end], st[end])


def first_states(a: Annotated) -> list[TcpState]:
    """Before the first packet seen: a connection opened in view starts CLOSED (client)
    and LISTEN (server); one seen in the middle starts ESTABLISHED."""
    if a.packet.flags & SYN:
        return [S.CLOSED, S.LISTEN]
    return [S.ESTABLISHED, S.ESTABLISHED]


def connection_states(packets: Sequence[Annotated],
                      events: Iterable[KernelEvent] = ()) -> list[StateStep | None]:
    """The state step of every packet (None: not TCP), one tracker per connection; an
    end with state changes among ``events`` (tied by ``tie_kernel``) has the kernel's."""
    trackers: dict[int, StateTracker] = {}
    out: list[StateStep | None] = []
    for a in packets:
        conv = a.conv
        if conv is None or a.packet.seq < 0:
            out.append(None)
            continue
        tracker = trackers.get(id(conv))
        if tracker is None:
            tracker = trackers[id(conv)] = StateTracker()
        out.append(tracker.see(a))
    recorded = _recorded_changes(packets, events)
    if not recorded:
        return out
    ends: dict[tuple[int, bool], TcpState] = {}  # (stream, client?) -> the kernel's state now
    for i, a in enumerate(packets):
        step = out[i]
        if step is None or a.conv is None:
            continue
        out[i] = _kernel_step(step, a.conv.stream, recorded.get(a.no, {}), ends, recorded)
    return out


_Changes = dict[int, dict[bool, list[tuple[TcpState, TcpState]]]]  # packet -> end -> changes


def _recorded_changes(packets: Sequence[Annotated], events: Iterable[KernelEvent]) -> _Changes:
    """The kernel's state changes by the packet they are tied to, and by end; also, under
    key ``-1 - stream``, the first state each recorded end of a stream was in."""
    by_stream: dict[int, list[Annotated]] = {}
    for a in packets:
        if a.conv is not None:
            by_stream.setdefault(a.conv.stream, []).append(a)
    changes: _Changes = {}
    for e in events:
        if (e.kind is not KernelEventKind.STATE or e.side not in ("client", "server")
                or e.stream not in by_stream):
            continue
        before, after = KERNEL_STATES.get(e.old_state), KERNEL_STATES.get(e.new_state)
        if after is None:
            continue
        client = e.side == "client"
        first = changes.setdefault(-1 - e.stream, {})
        if client not in first:
            first[client] = [(before or after, before or after)]
        if before is after:
            continue
        no = e.packets[0] if e.packets else _packet_before(by_stream[e.stream], e.ts_ns)
        changes.setdefault(no, {}).setdefault(client, []).append((before or after, after))
    return changes


def _packet_before(packets: list[Annotated], ts_ns: int) -> int:
    """The last of ``packets`` captured at or before ``ts_ns`` (else the first)."""
    no = packets[0].no
    for a in packets:
        if a.packet.ts_ns <= ts_ns:
            no = a.no
    return no


def _kernel_step(step: StateStep, stream: int, here: dict[bool, list[tuple[TcpState, TcpState]]],
                 ends: dict[tuple[int, bool], TcpState], recorded: _Changes) -> StateStep:
    """``step`` with each end the kernel recorded in ``stream`` replaced by the kernel's."""
    first = recorded.get(-1 - stream, {})
    states = [step.client, step.server]
    moves = {True: [t for t in step.transitions if t.client],
             False: [t for t in step.transitions if not t.client]}
    for client in (True, False):
        if client not in first:
            continue
        now = ends.setdefault((stream, client), first[client][0][0])
        moves[client] = []
        for before, after in here.get(client, []):
            moves[client].append(Transition(client, now if before is now else before, after))
            now = after
        ends[(stream, client)] = now
        states[0 if client else 1] = now
    return StateStep(states[0], states[1], tuple(moves[True] + moves[False]),
                     (True in first, False in first))
