"""What confuses learners, as notes the tracker puts on packets (pure;
``sockcap.pipeline.contract.CONFUSION_NOTES``; the C twin's are ``confusion_note()`` and
``learner_notes()`` in sockcap/_speedups.c). Apart from the tracker so that each stays
readable: these read and set only the state their docs name."""

from __future__ import annotations

from sockcap.analysis.annotated import Conversation
from sockcap.analysis.direction import Direction
from sockcap.analysis.offload import (
    SMALLEST_MTU_PAYLOAD,
    address_sum,
    mtu_cut,
    partial_checksum,
    tcp_start,
)
from sockcap.codes import CountedNote, Note, Roles
from sockcap.decode.records import Packet, TcpFlags

FIN, SYN, RST, PSH, ACK = (int(f) for f in (TcpFlags.FIN, TcpFlags.SYN, TcpFlags.RST,
                                            TcpFlags.PSH, TcpFlags.ACK))
MOD32 = 1 << 32
ROLES_GUESSED = Roles.GUESSED
PORT_REUSE, WINDOW_SCALE_UNKNOWN, TIME_WAIT = (Note.PORT_REUSE, Note.WINDOW_SCALE_UNKNOWN,
                                               Note.TIME_WAIT)
PARTIAL_CHECKSUM, LARGER_THAN_MTU, PART_OF_MESSAGE, NAGLE_STALL = (
    Note.PARTIAL_CHECKSUM, Note.LARGER_THAN_MTU, Note.PART_OF_MESSAGE, Note.NAGLE_STALL)
# Nagle with delayed ACK (Note.NAGLE_STALL): the peer's pure ACK of a side's data came
# this late after that data (delayed on purpose: Linux waits up to 40 ms) ...
DELAYED_NS = 20_000_000
# ... and the side's next data followed it this soon (the bytes were waiting for it)
RELEASED_NS = 10_000_000


def confusion_note(p: Packet, conv: Conversation, d: Direction, r: Direction,
                    from_client: bool) -> Note | None:
    """What confuses learners, as a note (contract.CONFUSION_NOTES), from the tracker's
    own state: the first packet of a connection opened on an earlier one's ports (the
    SYN) or of one whose handshake was not captured (its window scale is unknown); the
    first closer's ACK of the other end's FIN (it enters TIME_WAIT; once a connection).
    Called before :func:`sockcap.analysis.conversation._phase` records this packet's own FIN."""
    if d.packets == 1 and not r.packets:
        if conv.reused:
            return PORT_REUSE
        if conv.roles is ROLES_GUESSED:
            return WINDOW_SCALE_UNKNOWN
        return None
    if (p.flags & (SYN | FIN | RST | ACK) == ACK and not conv.time_wait and r.fin_seq >= 0
            and conv.closer == (1 if from_client else 2)
            and p.ack == (r.fin_seq + 1) % MOD32):
        conv.time_wait = True
        return TIME_WAIT
    return None


def learner_notes(p: Packet, conv: Conversation, d: Direction, r: Direction, plen: int,
                   flags: int, ts: int, seq: int, ack: int) -> tuple[str, ...]:
    """The rest of what confuses learners (contract.CONFUSION_NOTES), in that order, from
    state each direction keeps (absolute sequence numbers):

    - partial checksum: until the connection has the note, the checksum field against
      the pseudo-header's sum (O(1)), confirmed by the real checksum only when they
      match (offload.partial_checksum); said once per connection, on its first packet
      that shows it (on loopback: the SYN);
    - larger than the MTU: a payload over what the receiver's MSS (or 1500 bytes) lets
      one segment carry (offload.mtu_cut), on the packet itself;
    - part of a message: a data segment that starts where the same side's previous
      data segment, sent without PSH, ended. A stream read forward cannot know that a
      segment without PSH will be followed (stacks set PSH differently, a sender may
      stop there): the note goes on the segment that shows the message went on;
    - Nagle stall: a data segment that continues the side's data right after (within
      :data:`RELEASED_NS`) the peer's pure ACK of all of it, that ACK having come
      :data:`DELAYED_NS` or more after the data it acknowledged.
    """
    out: tuple[str, ...] = ()
    if not conv.partial_said:
        if d.addresses == -1:
            d.addresses = address_sum(p)
        if partial_checksum(p, tcp_start(p), d.addresses) is not None:
            conv.partial_said = True
            out = (PARTIAL_CHECKSUM,)
    if plen > SMALLEST_MTU_PAYLOAD or (r.mss >= 0 and plen > r.mss - 40):
        cut = mtu_cut(p, r.mss)
        if cut is not None:
            out = (*out, CountedNote(LARGER_THAN_MTU, cut[2]))  # segments on a wire
    if flags & (SYN | RST) or not plen:
        if plen or flags & (SYN | FIN | RST) or not flags & ACK:
            return out
        d.pure_ack = ack  # a pure ACK: what a Nagle stall waits for
        d.pure_ack_ts = ts
        return out
    if d.msg_end == seq:
        out = (*out, PART_OF_MESSAGE)
    d.msg_end = -1 if flags & (PSH | FIN) else (seq + plen) % MOD32
    if flags & FIN:
        return out
    before, before_ts = d.data_next, d.data_ts
    d.data_next = (seq + plen) % MOD32
    d.data_ts = ts
    if before == seq and r.pure_ack == seq and \
            r.pure_ack_ts - before_ts >= DELAYED_NS and 0 <= ts - r.pure_ack_ts <= RELEASED_NS:
        out = (*out, CountedNote(NAGLE_STALL, (ts - before_ts + 500_000) // 1_000_000))  # ms
    return out
