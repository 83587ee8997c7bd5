"""The time-sequence graph of one TCP direction (tcptrace's, or Stevens'): the layout.

Pure: a conversation's annotated packets in, a :class:`SeqGraph` out, in relative
sequence numbers (as the timeline counts them) against seconds since the conversation's
first packet. :func:`sockcap.render.svg.seqgraph_svg` draws it.

- ``segments``: each data segment (or SYN/FIN) of the direction drawn, from its first
  sequence number to the one after its last; retransmissions flagged.
- ``acks``: the other side's acknowledgment number over time; ``windows``: that ACK plus
  the window it offered (the right edge the sender may fill).
- ``sacks``: the SACK blocks the other side reported (RFC 2018), per ACK.
- ``zero_windows``: from a zero-window advertisement to the next non-zero one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sockcap.analysis.conversation import Annotated
from sockcap.codes import Note, note_kind
from sockcap.decode.ftrace import KernelEvent, KernelEventKind
from sockcap.decode.records import TcpFlags, TcpOptionKind
from sockcap.i18n import _

SYN, FIN = int(TcpFlags.SYN), int(TcpFlags.FIN)
MOD32 = 1 << 32
STYLES = ("tcptrace", "stevens")
_RESENT = {Note.RETRANSMISSION, Note.FAST_RETRANSMISSION, Note.SPURIOUS_RETRANSMISSION,
           Note.SYN_RETRANSMITTED}


class Segment(NamedTuple):
    no: int
    time: float
    start: int  # relative sequence number of the first byte
    end: int  # ... of the byte after the last (SYN and FIN count one)
    retransmission: bool


class SeqGraph(NamedTuple):
    title: str
    style: str  # "tcptrace" or "stevens"
    t_max: float
    seq_max: int  # the highest sequence number or ACK drawn
    segments: tuple[Segment, ...]
    acks: tuple[tuple[float, int], ...]  # (time, relative ack)
    windows: tuple[tuple[float, int], ...]  # (time, ack + window)
    sacks: tuple[tuple[float, int, int], ...]  # (time, left edge, right edge)
    zero_windows: tuple[tuple[float, float], ...]  # (from, to) in seconds


def sender_side(packets: Sequence[Annotated]) -> bool:
    """The direction worth graphing: the one that sent more payload (the client on a tie)."""
    sent = [0, 0]
    for a in packets:
        sent[0 if a.from_client else 1] += a.packet.payload_len
    return sent[0] >= sent[1]


def seqgraph_layout(packets: Sequence[Annotated], from_client: bool, style: str = "tcptrace",
                    title: str = "") -> SeqGraph:
    """The graph of the direction ``from_client`` of one TCP conversation's packets."""
    tcp = [a for a in packets if a.seq >= 0 and a.win >= 0]
    start = tcp[0].packet.ts_ns if tcp else 0
    segments: list[Segment] = []
    acks: list[tuple[float, int]] = []
    windows: list[tuple[float, int]] = []
    sacks: list[tuple[float, int, int]] = []
    zero: list[tuple[float, float]] = []
    zero_since = -1.0
    base = _base(tcp, from_client)
    for a in tcp:
        p = a.packet
        t = (p.ts_ns - start) / 1e9
        if a.from_client == from_client:
            length = p.payload_len + (1 if p.flags & SYN else 0) + (1 if p.flags & FIN else 0)
            if length:
                resent = any(_kind(n) in _RESENT for n in a.notes)
                segments.append(Segment(a.no, t, a.seq, a.seq + length, resent))
            continue
        if not p.flags & int(TcpFlags.ACK):
            continue
        acks.append((t, a.ack))
        windows.append((t, a.ack + a.win))
        if base >= 0:
            sacks += [(t, left, right) for left, right in _sack_blocks(p.options, base)]
        if a.win == 0 and zero_since < 0:
            zero_since = t
        elif a.win > 0 and zero_since >= 0:
            zero.append((zero_since, t))
            zero_since = -1.0
    t_max = (tcp[-1].packet.ts_ns - start) / 1e9 if tcp else 0.0
    if zero_since >= 0:
        zero.append((zero_since, t_max))
    # the scale is the data's: a window far above it would flatten the segments (the
    # window line leaves the plot at the top, as in Wireshark when zoomed to the data)
    tops = [s.end for s in segments] + [v for _, v in acks]
    return SeqGraph(title, style, t_max, max(tops, default=0), tuple(segments), tuple(acks),
                    tuple(windows), tuple(sacks), tuple(zero))


def _kind(note: str) -> Note | None:
    try:
        return note_kind(note)
    except ValueError:
        return None


def _base(tcp: Sequence[Annotated], from_client: bool) -> int:
    """The absolute sequence number that is relative 0 in the direction graphed."""
    for a in tcp:
        if a.from_client == from_client:
            return (a.packet.seq - a.seq) % MOD32
    return -1


def _sack_blocks(options: Sequence[tuple[int, bytes]], base: int) -> list[tuple[int, int]]:
    blocks = []
    for kind, value in options:
        if kind != TcpOptionKind.SACK:
            continue
        for i in range(0, len(value) - 7, 8):
            left = int.from_bytes(value[i : i + 4], "big")
            right = int.from_bytes(value[i + 4 : i + 8], "big")
            blocks.append(((left - base) % MOD32, (right - base) % MOD32))
    return blocks


SSTHRESH_UNSET = 0x7FFFFFFF  # the kernel's TCP_INFINITE_SSTHRESH: no loss seen yet


DEFAULT_MSS = 536  # RFC 9293 3.7.1: the send MSS when the peer's SYN carried no MSS option
TIMESTAMPS_LEN = 12  # the timestamps option (10 bytes) and its two NOPs, on every segment


def sender_mss(packets: Sequence[Annotated], from_client: bool) -> int:
    """The bytes in one of the sender's full segments, as the connection negotiated them:
    the MSS option of the peer's SYN (what the peer said it can receive), lowered to the
    sender's own SYN MSS (its own interface's limit), less the 12 bytes of the timestamps
    option when both SYNs carried it (RFC 7323: every later segment carries it, and the
    kernel's ``mss_cache`` leaves it out). This kernel's ``tcp:tcp_probe`` has no MSS
    field (its format lists snd_cwnd, ssthresh, srtt, snd_wnd, rcv_wnd but no
    mss_cache), so the handshake on the wire is where the size comes from.
    :data:`DEFAULT_MSS` when the peer's SYN was not captured or had no MSS option."""
    peer = own = 0
    stamps = [False, False]
    for a in packets:
        if a.seq < 0 or not a.packet.flags & SYN:
            continue
        mine = a.from_client == from_client
        for kind, value in a.packet.options:
            if kind == TcpOptionKind.MSS and len(value) == 2:
                mss = int.from_bytes(value, "big")
                if mine:
                    own = own or mss
                else:
                    peer = peer or mss
            elif kind == TcpOptionKind.TIMESTAMPS:
                stamps[mine] = True
    if not peer:
        return DEFAULT_MSS
    mss = min(peer, own) if own else peer
    return mss - TIMESTAMPS_LEN if all(stamps) else mss


def probe_cwnd(events: Sequence[KernelEvent], packets: Sequence[Annotated], from_client: bool
               ) -> tuple[tuple[float, int, int], ...]:
    """The sender's congestion window and slow-start threshold **in bytes** over the
    graph's time, as ``--kernel`` recorded them: the ``tcp:tcp_probe`` tracepoint fires
    each time the sending socket receives a segment (an ACK) and prints that socket's
    ``snd_cwnd`` and ``ssthresh`` in segments (tied to this conversation and side by
    :func:`sockcap.analysis.story.tie_kernel`); each is multiplied by
    :func:`sender_mss`, the segment size the handshake negotiated. Each point is
    (seconds since the conversation's first packet, cwnd, ssthresh; 0 while the kernel
    has none); a point is kept only where either changed. Empty when nothing was
    recorded."""
    if not packets or packets[0].conv is None:
        return ()
    stream, side = packets[0].conv.stream, "client" if from_client else "server"
    start = packets[0].packet.ts_ns
    mss = sender_mss(packets, from_client)
    points: list[tuple[float, int, int]] = []
    for e in events:
        if e.kind is not KernelEventKind.PROBE or e.stream != stream or e.side != side:
            continue
        ssthresh = e.ssthresh * mss if 0 <= e.ssthresh < SSTHRESH_UNSET else 0
        if points and points[-1][1:] == (e.snd_cwnd * mss, ssthresh):
            continue
        points.append(((e.ts_ns - start) / 1e9, e.snd_cwnd * mss, ssthresh))
    return tuple(points)


def probe_srtt(events: Sequence[KernelEvent], packets: Sequence[Annotated], from_client: bool
               ) -> tuple[tuple[float, int], ...]:
    """The sender's smoothed RTT (µs) over the graph's time, from the same ``tcp_probe``
    events as :func:`probe_cwnd`; a point where it changed."""
    if not packets or packets[0].conv is None:
        return ()
    stream, side = packets[0].conv.stream, "client" if from_client else "server"
    start = packets[0].packet.ts_ns
    points: list[tuple[float, int]] = []
    for e in events:
        if (e.kind is KernelEventKind.PROBE and e.stream == stream and e.side == side
                and e.srtt_us >= 0 and (not points or points[-1][1] != e.srtt_us)):
            points.append(((e.ts_ns - start) / 1e9, e.srtt_us))
    return tuple(points)


def probe_source() -> str:
    """Where :func:`probe_cwnd`'s numbers come from, as a graph's legend says it."""
    return _("from --kernel (tcp:tcp_probe)")
