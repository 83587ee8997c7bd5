"""The state one direction of a TCP connection keeps: counters, sequence base, window
scale, and the expert analysis' running values.

Its own module so that the conversation tracker and the expert analysis (which both
read and write it) depend on it rather than on each other.
"""

from __future__ import annotations

SCALE_UNKNOWN = -1  # no SYN seen for this direction
SCALE_NONE = -2  # the SYN had no window-scale option


class Direction:
    """What one direction of a TCP connection has shown so far."""

    __slots__ = ("base", "scale", "syn", "fin", "packets", "bytes", "payload_bytes",
                 "nextseq", "nextseq_ts", "lastack", "lastack_ts", "window", "dupacks",
                 "lastflags", "maxseqtobeacked", "edge", "mptcp_ops", "fin_seq", "mss",
                 "addresses", "msg_end", "data_next", "data_ts", "pure_ack", "pure_ack_ts")

    def __init__(self) -> None:
        self.base = -1  # sequence number base, -1 until known
        self.scale = SCALE_UNKNOWN
        self.syn = False
        self.fin = False
        self.fin_seq = -1  # absolute sequence number of its first FIN, -1 before it
        self.packets = 0
        self.bytes = 0  # frame bytes on the wire
        self.payload_bytes = 0
        # Expert analysis state (see sockcap.analysis.expert); absolute sequence numbers,
        # 0 meaning "not known yet" as in Wireshark.
        self.nextseq = 0  # highest sequence number sent so far, plus one
        self.nextseq_ts = 0  # when nextseq last advanced
        self.lastack = 0  # ack field of the last segment sent
        self.lastack_ts = 0
        self.window = 0xFFFFFFFF  # raw window of the last segment sent (none yet)
        self.dupacks = 0  # duplicate ACKs in a row (-1: after an ACKed unseen segment)
        self.lastflags = 0  # analysis flags of the last segment sent
        self.maxseqtobeacked = 0  # end of the contiguous bytes seen
        self.edge = 0xFFFFFFFF  # right edge of the window last offered: lastack + window
        self.mptcp_ops = 0  # the conversation's MPTCP mapping count after our last segment
        # What confuses learners (learner_notes.learner_notes): the MSS its SYN offered
        # (-1: none seen); the pseudo-header's address sum (checksum.address_sum; -1 not
        # yet computed); where the message its last data segment without PSH left open
        # ends (-1: none open); the end and time of its last data segment (-1: none yet)
        # and the ack and time of its last pure ACK (-1: none yet), for Nagle stalls.
        self.mss = -1
        self.addresses = -1
        self.msg_end = -1
        self.data_next = -1
        self.data_ts = 0
        self.pure_ack = -1
        self.pure_ack_ts = 0
