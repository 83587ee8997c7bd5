"""The records the conversation tracker (:mod:`sockcap.analysis.conversation`) makes: a
:class:`Conversation` (one 5-tuple and its running state) and an :class:`Annotated` packet
(a packet with what its conversation says about it). Apart from the tracker so that a
view, a judge or an export reads what a record is without reading how it is made.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple compiles each
# field's annotation string into a ForwardRef at import (start-up, bench/startup_bench.py).
from sockcap._typing import NamedTuple
from sockcap.analysis.direction import Direction
from sockcap.codes import Note, Outcome, Phase, Roles
from sockcap.decode.records import IPPROTO_TCP, Packet

END_REFUSED = Outcome.REFUSED
END_RESET = Outcome.RESET
END_CLOSED = Outcome.CLOSED
END_HALF_CLOSED = Outcome.HALF_CLOSED
END_OPEN = Outcome.OPEN
END_UNANSWERED = Outcome.UNANSWERED



class Conversation:
    """One TCP or UDP conversation (a 5-tuple) and its running state.

    ``dirs[0]`` is client -> server, ``dirs[1]`` server -> client.
    """

    __slots__ = (
        "stream", "proto", "client", "server", "roles", "dirs", "first_ts", "last_ts",
        "syn_ts", "synack_ts", "ack_ts", "handshake_done", "closing", "reset",
        "mru_syn_ts", "first_rtt", "note_counts", "refused", "half_closed", "mptcp",
        "mptcp_ops", "retired", "rtt_answered", "accecn_syn", "accecn", "reused", "closer",
        "time_wait", "partial_said",
    )

    def __init__(self, stream: int, proto: int, client: tuple[str, int],
                 server: tuple[str, int], roles: Roles, ts: int) -> None:
        self.stream = stream
        self.proto = proto
        self.client = client
        self.server = server
        self.roles = roles
        self.dirs = (Direction(), Direction())
        self.first_ts = ts
        self.last_ts = ts
        self.syn_ts = -1
        self.synack_ts = -1
        self.ack_ts = -1
        self.handshake_done = False
        self.closing = False  # a FIN was seen
        self.reset = False  # an RST was seen
        self.mru_syn_ts = 0  # time of the most recent SYN (0: none yet)
        self.first_rtt = 0  # Wireshark's tcp.analysis.initial_rtt in ns (0: not known)
        self.rtt_answered = False  # first_rtt ended with a segment from the server
        self.accecn_syn = False  # the SYN asked for Accurate ECN (AE, CWR, ECE all set)
        self.accecn = False  # ... and the SYN-ACK agreed: AE/CWR/ECE are the ACE counter
        self.note_counts: dict[Note, int] | None = None  # note kind -> count, once any
        self.refused = False  # the SYN was answered with RST
        self.half_closed = False  # data flowed after one side's FIN
        self.retired = False  # queued to be forgotten (ConversationTracker keep=False)
        self.mptcp = False  # an MPTCP option was in a SYN
        self.mptcp_ops = 0  # MPTCP data mappings seen (Wireshark's mp_operations)
        self.reused = False  # opened by a SYN on an earlier conversation's 5-tuple
        self.closer = 0  # who sent the first FIN: 1 the client, 2 the server, 0 none yet
        self.time_wait = False  # Note.TIME_WAIT was put on a packet
        self.partial_said = False  # Note.PARTIAL_CHECKSUM was put on a packet (once)

    @property
    def irtt_ns(self) -> int:
        """The handshake's round-trip time as Wireshark measures it; -1 when unknown.

        Wireshark's rule (``tcp.analysis.initial_rtt``): from the most recent SYN to the
        first segment with ACK and without SYN that follows it, whichever side sends it.
        Wireshark applies it even when no SYN-ACK was captured: a SYN, then a FIN-ACK ten
        seconds later, gives a ten-second "initial RTT" that it keeps for its analysis
        but shows on no packet unless more follow. That is no round trip, so here it is
        given only when the segment that ended it came from the other side (a SYN-ACK
        was seen, or the server answered the SYN with RST, ACK: a refused connection's
        round trip). ``first_rtt`` keeps Wireshark's value for the expert analysis,
        which uses it as its out-of-order threshold.
        """
        answered = self.synack_ts >= 0 or self.rtt_answered
        return self.first_rtt if self.first_rtt > 0 and answered else -1

    @property
    def ended(self) -> bool:
        return self.reset or (self.dirs[0].fin and self.dirs[1].fin)

    @property
    def end_state(self) -> Outcome:
        """How the conversation ended: refused, reset, its SYN never answered (the
        client's SYN seen, no SYN-ACK and nothing at all from the server: a client that
        gave up with a FIN is this too), closed, half-closed or open."""
        if self.proto != IPPROTO_TCP:
            return Outcome.NONE
        if self.refused:
            return END_REFUSED
        if self.reset:
            return END_RESET
        if self.syn_ts >= 0 and self.synack_ts < 0 and not self.dirs[1].packets:
            return END_UNANSWERED
        if self.dirs[0].fin and self.dirs[1].fin:
            return END_CLOSED
        return END_HALF_CLOSED if self.closing else END_OPEN


class Annotated(NamedTuple):
    """A packet with what its conversation says about it."""

    no: int  # 1-based packet number, as Wireshark's frame.number
    packet: Packet
    conv: Conversation | None  # None for packets that are neither TCP nor UDP
    from_client: bool  # direction within the conversation
    seq: int  # relative sequence number (TCP), -1 otherwise
    ack: int  # relative acknowledgment number (TCP with ACK set), 0 without ACK, -1 not TCP
    win: int  # window, scaled where the handshake allows it; -1 not TCP
    phase: Phase  # handshake 1/3 .. 3/3, data, ack, teardown, reset (NONE: not TCP/UDP)
    notes: tuple[str, ...]  # decode notes, later analysis notes
