"""Expert notes: what is unusual about a TCP segment, named as Wireshark names it.

Pure and O(1) per packet. :func:`analyze_segment` is a transcription of Wireshark's
``tcp_analyze_sequence_number`` (epan/dissectors/packet-tcp.c, as in tshark 4.0) so that
each note here agrees with one of tshark's ``tcp.analysis.*`` flags:

============================== =====================================
note                           tshark field
============================== =====================================
retransmission                 tcp.analysis.retransmission
SYN retransmitted              tcp.analysis.retransmission (on a SYN)
spurious retransmission        tcp.analysis.spurious_retransmission
fast retransmission            tcp.analysis.fast_retransmission
out-of-order                   tcp.analysis.out_of_order
previous segment not captured  tcp.analysis.lost_segment
ACKed unseen segment           tcp.analysis.ack_lost_segment
duplicate ACK #n               tcp.analysis.duplicate_ack_num
zero window                    tcp.analysis.zero_window
zero window probe              tcp.analysis.zero_window_probe
zero window probe ACK          tcp.analysis.zero_window_probe_ack
window full                    tcp.analysis.window_full
window update                  tcp.analysis.window_update
keep-alive                     tcp.analysis.keep_alive
keep-alive ACK                 tcp.analysis.keep_alive_ack
============================== =====================================

Three notes are sockcap's own, about the connection rather than the segment:
``connection refused`` (an RST answering a SYN), ``connection reset`` (any other RST) and
``half-close`` (data still flowing from one side after the other side's FIN).

Design: the state Wireshark keeps per direction (next expected sequence number, last ACK
and window, duplicate-ACK count, the flags of the last segment) lives in the slots of
:class:`~sockcap.analysis.conversation.Direction`. Wireshark also keeps a list of unACKed
segments per direction; that list only feeds RTT and bytes-in-flight figures, which no
note depends on, so it is left out and the cost per packet stays constant. Numbers are
absolute 32-bit sequence numbers compared modulo 2**32 (Wireshark's ``GT_SEQ``); like
Wireshark, 0 means "not known yet" for ``nextseq``, ``lastack`` and ``maxseqtobeacked``.
The analysis returns a bit set; notes are built as strings only for the rare segment that
has one.
"""

from __future__ import annotations

from sockcap.codes import CountedNote, Note
from sockcap.codes import note_kind as note_kind  # re-exported: the kind of a note
from sockcap.decode.records import TcpFlags, TcpOption, TcpOptionKind

TYPE_CHECKING = False  # the type checker takes it as true

if TYPE_CHECKING:
    from sockcap.analysis.direction import Direction

# The notes, as codes (their words and explanations are in sockcap.codes).
RETRANSMISSION = Note.RETRANSMISSION
SYN_RETRANSMITTED = Note.SYN_RETRANSMITTED
SPURIOUS_RETRANSMISSION = Note.SPURIOUS_RETRANSMISSION
FAST_RETRANSMISSION = Note.FAST_RETRANSMISSION
OUT_OF_ORDER = Note.OUT_OF_ORDER
LOST_SEGMENT = Note.LOST_SEGMENT
ACKED_UNSEEN = Note.ACKED_UNSEEN
DUPLICATE_ACK = Note.DUPLICATE_ACK
ZERO_WINDOW = Note.ZERO_WINDOW
ZERO_WINDOW_PROBE = Note.ZERO_WINDOW_PROBE
ZERO_WINDOW_PROBE_ACK = Note.ZERO_WINDOW_PROBE_ACK
WINDOW_FULL = Note.WINDOW_FULL
WINDOW_UPDATE = Note.WINDOW_UPDATE
KEEP_ALIVE = Note.KEEP_ALIVE
KEEP_ALIVE_ACK = Note.KEEP_ALIVE_ACK
CONNECTION_REFUSED = Note.CONNECTION_REFUSED
CONNECTION_RESET = Note.CONNECTION_RESET
HALF_CLOSE = Note.HALF_CLOSE

# Analysis flags (Wireshark's TCP_A_*), one bit each.
A_RETRANSMISSION = 0x0001
A_LOST_PACKET = 0x0002
A_ACK_LOST_PACKET = 0x0004
A_KEEP_ALIVE = 0x0008
A_DUPLICATE_ACK = 0x0010
A_ZERO_WINDOW = 0x0020
A_ZERO_WINDOW_PROBE = 0x0040
A_ZERO_WINDOW_PROBE_ACK = 0x0080
A_KEEP_ALIVE_ACK = 0x0100
A_OUT_OF_ORDER = 0x0200
A_FAST_RETRANSMISSION = 0x0400
A_WINDOW_UPDATE = 0x0800
A_WINDOW_FULL = 0x1000
A_SPURIOUS_RETRANSMISSION = 0x2000
# segments that carry bytes sent before, or arrive after later ones
RESENT = A_RETRANSMISSION | A_FAST_RETRANSMISSION | A_SPURIOUS_RETRANSMISSION | A_OUT_OF_ORDER

# In the order Wireshark prepends them to the Info column, read left to right.
FLAG_NOTES = (
    (A_RETRANSMISSION, RETRANSMISSION),
    (A_FAST_RETRANSMISSION, FAST_RETRANSMISSION),
    (A_SPURIOUS_RETRANSMISSION, SPURIOUS_RETRANSMISSION),
    (A_OUT_OF_ORDER, OUT_OF_ORDER),
    (A_LOST_PACKET, LOST_SEGMENT),
    (A_ACK_LOST_PACKET, ACKED_UNSEEN),
    (A_WINDOW_UPDATE, WINDOW_UPDATE),
    (A_WINDOW_FULL, WINDOW_FULL),
    (A_KEEP_ALIVE, KEEP_ALIVE),
    (A_KEEP_ALIVE_ACK, KEEP_ALIVE_ACK),
    (A_ZERO_WINDOW, ZERO_WINDOW),
    (A_ZERO_WINDOW_PROBE, ZERO_WINDOW_PROBE),
    (A_ZERO_WINDOW_PROBE_ACK, ZERO_WINDOW_PROBE_ACK),
)

MOD32 = 1 << 32
HALF32 = 1 << 31
# plain ints from the one definition of the bits (an IntFlag operation costs a call)
FIN, SYN, RST, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST, TcpFlags.ACK))
MPTCP_DSS = 2  # MPTCP option subtype: Data Sequence Signal (RFC 8684 3.3)
MPTCP_DSS_MAPPING = 0x04  # DSS flag M: a data sequence mapping is present
FAST_RETRANSMISSION_NS = 20_000_000  # Wireshark: within 20 ms of the last duplicate ACK
OUT_OF_ORDER_NS = 3_000_000  # Wireshark's threshold when no initial RTT is known

_NOTE_CACHE: dict[int, tuple[str, ...]] = {}


def notes_of(bits: int, dupack: int, syn: bool,
             counted: tuple[tuple[Note, int], ...] = ()) -> tuple[str, ...]:
    """The note strings for an analysis bit set (cached: few distinct sets occur), then
    ``counted``: ``(kind, n)`` of notes with a number found elsewhere (the compiled
    engine hands a view its confusions' numbers so), as :class:`CountedNote`."""
    key = bits | (0x10000 if syn else 0)
    notes = _NOTE_CACHE.get(key)
    if notes is None:
        names = [n for bit, n in FLAG_NOTES if bits & bit]
        if syn and RETRANSMISSION in names:
            names[names.index(RETRANSMISSION)] = SYN_RETRANSMITTED
        notes = tuple(names)
        _NOTE_CACHE[key] = notes
    if bits & A_DUPLICATE_ACK:
        notes = (*notes, CountedNote(DUPLICATE_ACK, dupack))
    if counted:
        notes = (*notes, *(CountedNote(kind, n) for kind, n in counted))
    return notes


def analyze_segment(seq: int, ack: int, seglen: int, flags: int, window: int, ts: int,
                    d: Direction, r: Direction, first_rtt: int, mptcp_moved: bool) -> int:
    """Wireshark's analysis flags for one segment sent in direction ``d`` (``r``: the other).

    Updates both directions' state as Wireshark does. ``window`` is the raw (unscaled)
    window, ``first_rtt`` the connection's initial RTT so far (0: not known),
    ``mptcp_moved`` whether MPTCP mapped data since this direction's last segment.

    The checks are Wireshark's, in its order; they are arranged so that an in-order
    segment or a new ACK (nearly every packet) takes a few comparisons and no calls
    beyond the window-full test.
    """
    f = 0
    nextseq = d.nextseq
    lastack = d.lastack
    plain = not flags & (SYN | FIN | RST)
    if seglen == 1 and seq == nextseq and r.window == 0:
        f = A_ZERO_WINDOW_PROBE
    else:
        if window == 0 and plain:
            f = A_ZERO_WINDOW
        if seq != nextseq:
            if nextseq and 0 < (seq - nextseq) % MOD32 < HALF32 and not flags & RST:
                f |= A_LOST_PACKET
            if seglen <= 1 and plain and seq == (nextseq - 1) % MOD32:
                f |= A_KEEP_ALIVE
        elif seglen == 0 and plain and ack == lastack:
            f |= _repeated_ack(window, mptcp_moved, d, r)
        if seglen > 0 and plain and r.scale != -1 and (seq + seglen) % MOD32 == r.edge:
            f |= A_WINDOW_FULL
    if ack != lastack:
        d.dupacks = 0
    if flags & ACK and r.maxseqtobeacked and 0 < (ack - r.maxseqtobeacked) % MOD32 < HALF32:
        f |= _acked_unseen(r)
    nxt = (seq + seglen + (1 if flags & (SYN | FIN) else 0)) % MOD32
    if (seglen > 0 or flags & (SYN | FIN)) and not f & A_KEEP_ALIVE and (seq != nextseq or (
            seglen > 0 and r.lastack and (r.lastack - seq - seglen) % MOD32 < HALF32)):
        f |= _retransmission(seq, seglen, flags, ts, d, r, first_rtt)
    # Wireshark's bookkeeping for the next segment (a zero window probe moves nothing).
    probe = f & A_ZERO_WINDOW_PROBE
    if (not nextseq or 0 < (nxt - nextseq) % MOD32 < HALF32) and not probe:
        d.nextseq = nextseq = nxt
        d.nextseq_ts = ts
    if (seq == d.maxseqtobeacked or not d.maxseqtobeacked) and not probe:
        d.maxseqtobeacked = nextseq
    d.window = window
    d.lastack = ack
    d.lastack_ts = ts
    d.lastflags = f
    # the right edge of the window this segment offers (the SYN's window is never scaled)
    d.edge = (ack + (window << d.scale if d.scale > 0 and not flags & SYN else window)) % MOD32
    return f


def _repeated_ack(window: int, mptcp_moved: bool, d: Direction, r: Direction) -> int:
    """A zero-length segment repeating this direction's last seq and ack.

    MPTCP may repeat an ACK on one subflow while data moves on the connection (RFC 8684
    section 4); as Wireshark, such a repeat is not a duplicate ACK.
    """
    if window != d.window:
        return A_WINDOW_UPDATE if window else 0
    if window and r.lastflags & A_KEEP_ALIVE:
        return A_KEEP_ALIVE_ACK
    if not window:
        return A_ZERO_WINDOW_PROBE_ACK if r.lastflags & A_ZERO_WINDOW_PROBE else 0
    if mptcp_moved:
        return 0
    d.dupacks = 1 if d.dupacks < 0 else d.dupacks + 1
    return A_DUPLICATE_ACK


def mptcp_mappings(options: tuple[TcpOption, ...]) -> int:
    """How many MPTCP DSS options with a data mapping (flag M) the segment carries."""
    return sum(1 for o in options if o.kind == TcpOptionKind.MPTCP and len(o.value) > 1
               and o.value[0] >> 4 == MPTCP_DSS and o.value[1] & MPTCP_DSS_MAPPING)


def _acked_unseen(r: Direction) -> int:
    """An ACK covers bytes of ``r`` beyond the contiguous ones the capture saw.

    Flagged once per hole: when ``r`` has sent past the hole since (Wireshark then moves
    its mark to the end of what was sent), or on the first such ACK in a row otherwise
    (``dupacks`` -1 remembers it until this side's ACK number changes).
    """
    if r.maxseqtobeacked < r.nextseq:
        r.maxseqtobeacked = r.nextseq
        return A_ACK_LOST_PACKET
    flag = A_ACK_LOST_PACKET if r.dupacks == 0 else 0
    r.dupacks = -1
    return flag


def _retransmission(seq: int, seglen: int, flags: int, ts: int, d: Direction,
                    r: Direction, first_rtt: int) -> int:
    """Retransmission, fast retransmission, spurious retransmission or out-of-order."""
    nextseq = d.nextseq
    behind = bool(nextseq) and (seq - nextseq) % MOD32 >= HALF32
    if seglen > 1 and (nextseq - 1) % MOD32 == seq:
        behind = False  # new data after a one-byte zero window probe
    if seglen > 0 and r.lastack and (r.lastack - seq - seglen) % MOD32 < HALF32:
        return A_SPURIOUS_RETRANSMISSION
    if not behind:
        return 0
    if (r.dupacks >= 2 or r.dupacks < 0) and r.lastack == seq and 0 <= ts - r.lastack_ts < FAST_RETRANSMISSION_NS:
        return A_FAST_RETRANSMISSION
    threshold = first_rtt if first_rtt > 0 else OUT_OF_ORDER_NS
    end = seq + seglen + (1 if flags & (SYN | FIN) else 0)
    if 0 <= ts - d.nextseq_ts < threshold and nextseq != end % MOD32:
        return A_OUT_OF_ORDER
    return A_RETRANSMISSION
