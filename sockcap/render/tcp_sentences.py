"""The sentence ``--explain`` gives one TCP segment (pure): the case (:class:`Why`) the
evidence decides, from what each direction said last (:class:`Side`), and its words. The
reasoning is :mod:`sockcap.render.explain`'s (read its docs); this module holds the
per-segment half of it so that each module stays one subject: the explainer keeps the
connections, this decides and words one segment.
"""

from __future__ import annotations

from sockcap.analysis.calls import CallKind
from sockcap.analysis.conversation import Annotated
from sockcap.codes import Note, Phase
from sockcap.decode.records import TcpFlags
from sockcap.i18n import _
from sockcap.render.segment_cases import (
    ACK,
    FIN,
    MOD32,
    PREVIEW,
    RST,
    SIDE_WORDS,
    SYN,
    Side,
    Why,
    fastclose,
    is_copy,
    is_dsack,
    ms_text,
    note_kinds,
    sack_blocks,
    sack_text,
)
from sockcap.render.timeline import preview


def tcp_sentence(a: Annotated, side: str, own: Side, peer: Side) -> tuple[Why, str]:
    p = a.packet
    flags, seq, ack = p.flags, a.seq, a.ack
    kinds = note_kinds(a)
    other = _(SIDE_WORDS[not a.from_client])
    if (flags & SYN and flags & (FIN | RST)) or (flags & FIN and flags & RST):
        return Why.INVALID_FLAGS, _(
            "{side} sends a segment with the flags {flags} at once: SYN with FIN or RST, or "
            "FIN with RST, is a combination no TCP stack sends (RFC 9293); it is crafted, a "
            "scan or damage, and a receiver drops it.").format(
            side=side, flags=TcpFlags(flags & 0x1FF).name or str(flags))
    if is_copy(a, own):
        assert own.last is not None
        return Why.COPY, _(
            "The same packet as no. {no}, seen a second time {ms} ms later (same IP ID "
            "{id}, same Seq, Ack and flags): {side} sent it once; the copy was made after "
            "it left, by the capture (two interfaces, a mirrored port) or by the link (a "
            "network that duplicates packets delivers both). It is neither a retransmission "
            "nor a duplicate ACK.").format(no=own.last[5], ms=ms_text(p.ts_ns - own.last[6]),
                                     id=p.ip_id, side=side)
    if flags & RST:
        return _rst_sentence(a, side, other, kinds)
    if flags & SYN:
        return _syn_sentence(a, side, own, peer, kinds)
    resent = _resent_sentence(a, side, other, own, peer, kinds)
    if resent is not None:
        return resent
    if flags & FIN:
        return _fin_sentence(a, side, other, own, peer)
    if a.phase is Phase.HANDSHAKE_3:
        return Why.HANDSHAKE_ACK, _(
            "{side} acknowledges the SYN-ACK: Ack {ack} = Seq 0 + 1 (the SYN took one "
            "sequence number). The connection is open.").format(side=side, ack=ack)
    if Note.ZERO_WINDOW in kinds:
        return Why.ZERO_WINDOW, _(
            "{side} announces a window of 0: its receive buffer is full, and {other} must "
            "wait until it reads.").format(side=side, other=other)
    if Note.ZERO_WINDOW_PROBE in kinds:
        return Why.ZERO_WINDOW_PROBE, _(
            "{side} sends one byte into the zero window to ask whether there is room "
            "again.").format(side=side)
    if Note.KEEP_ALIVE in kinds:
        if peer.win == 0:
            return Why.ZERO_WINDOW_PROBE, _(
                "{side} probes {other}'s zero window: it sends Seq {seq}, one below the next "
                "byte, so that {other} must answer with its current window (Linux's zero "
                "window probe; Wireshark calls its shape a keep-alive).").format(
                side=side, other=other, seq=seq)
        return Why.KEEP_ALIVE, _(
            "{side} checks whether {other} is still there (a keep-alive): Seq {seq} is one "
            "below the next byte, so {other} must answer with an ACK.").format(
            side=side, other=other, seq=seq)
    if Note.DUPLICATE_ACK in kinds:
        return _dupack_sentence(a, side, other, own, peer)
    return _data_or_ack_sentence(a, side, other, own, peer, kinds)


def _rst_sentence(a: Annotated, side: str, other: str, kinds: frozenset[Note]) -> tuple[Why, str]:
    p = a.packet
    if a.phase is Phase.RESET and Note.CONNECTION_REFUSED in kinds:
        return Why.REFUSED, _(
            "RST: nothing listens on port {port}, so {side} refuses the connection; the "
            "client's connect() fails with ECONNREFUSED.").format(port=p.sport, side=side)
    if p.payload_len > 0:
        return Why.RESET, _(
            "RST: {side} aborts the connection; data not yet read is thrown away and "
            "{other}'s next call fails with ECONNRESET. The RST carries {length} bytes "
            "({preview}): a text some stacks and middleboxes add to say why (RFC 9293 "
            "3.5.3).").format(side=side, other=other, length=p.payload_len,
                              preview=preview(p.payload, PREVIEW))
    return Why.RESET, _(
        "RST: {side} aborts the connection; data not yet read is thrown away and {other}'s "
        "next call fails with ECONNRESET.").format(side=side, other=other)


def _syn_sentence(a: Annotated, side: str, own: Side, peer: Side,
                  kinds: frozenset[Note]) -> tuple[Why, str]:
    p = a.packet
    again = Note.SYN_RETRANSMITTED in kinds or Note.RETRANSMISSION in kinds
    if not p.flags & ACK:
        if again:
            return Why.SYN_AGAIN, _("{side} sends its SYN again: no SYN-ACK came back in "
                                    "time.").format(side=side)
        if p.payload_len > 0:
            return Why.SYN_DATA, _(
                "{side} asks to open a connection and already sends {length} bytes of data "
                "with the SYN ({preview}: TCP Fast Open, RFC 7413); its first sequence "
                "number (shown as 0) is {isn}, the SYN takes Seq 0 and the data Seq 1 to "
                "{length}.").format(side=side, length=p.payload_len,
                                    preview=preview(p.payload, PREVIEW), isn=p.seq)
        return Why.SYN, _("{side} asks to open a connection; its first sequence number "
                          "(shown as 0) is {isn}.").format(side=side, isn=p.seq)
    if again:
        return Why.SYN_ACK_AGAIN, _(
            "{side} sends its SYN-ACK again: no ACK for it came back in time.").format(side=side)
    if peer.syn_len and a.ack == peer.syn_len + 1:
        return Why.SYN_ACK, _(
            "{side} agrees and opens its own direction; its first sequence number (shown as "
            "0) is {isn}. Ack {ack} = Seq 0 + 1 + {length}: the SYN took one sequence number "
            "and its {length} data bytes the next ones.").format(
            side=side, isn=p.seq, ack=a.ack, length=peer.syn_len)
    return Why.SYN_ACK, _(
        "{side} agrees and opens its own direction; its first sequence number (shown as 0) "
        "is {isn}. Ack {ack} = Seq 0 + 1: the SYN takes one sequence number and carries no "
        "byte.").format(side=side, isn=p.seq, ack=a.ack)


def _resent_sentence(a: Annotated, side: str, other: str, own: Side, peer: Side,
                     kinds: frozenset[Note]) -> tuple[Why, str] | None:
    """Bytes (or a FIN) sent again: why, from the peer's ACKs before it."""
    p = a.packet
    length, seq = p.payload_len, a.seq
    # the peer asks for exactly these bytes, with duplicate ACKs or SACK blocks saying
    # later ones arrived: they are sent again, whatever the timing made Wireshark call it
    asked = length > 0 and peer.acked == seq and (peer.dupacks >= 1 or
                                                  (peer.sacked and peer.repeats >= 1))
    if Note.OUT_OF_ORDER in kinds and not asked:
        return Why.OUT_OF_ORDER, _(
            "{side} sends {length} bytes at Seq {seq}, below bytes it sent before: they "
            "arrive out of order (or the capture saw them late).").format(
            side=side, length=length, seq=seq)
    if not kinds & {Note.RETRANSMISSION, Note.SPURIOUS_RETRANSMISSION,
                    Note.FAST_RETRANSMISSION, Note.OUT_OF_ORDER}:
        return None
    if Note.SPURIOUS_RETRANSMISSION in kinds:
        return Why.SPURIOUS, _(
            "{side} sends {length} bytes again from Seq {seq}, although {other} had already "
            "acknowledged them (Ack {acked}): the first copy arrived, but {side} did not get "
            "that ACK in time (it was lost or late), so this copy was not needed — a "
            "spurious retransmission.").format(side=side, other=other, length=length,
                                               seq=seq, acked=peer.acked)
    fin = p.flags & FIN and not length
    if fin:
        return Why.FIN_AGAIN, _(
            "{side} sends its FIN again (Seq {seq}): no ACK for the FIN came in time. The "
            "FIN takes one sequence number and carries no byte.").format(side=side, seq=seq)
    if asked:
        if Note.FAST_RETRANSMISSION in kinds or peer.dupacks >= 3:
            return Why.FAST, _(
                "{side} sends {length} bytes again from Seq {seq} right after {count} "
                "duplicate ACKs asked for byte {seq}: a fast retransmission (RFC 5681 3.2), "
                "without waiting for a timeout.").format(
                side=side, length=length, seq=seq, count=peer.dupacks)
        return Why.SACK_RECOVERY, _(
            "{side} sends {length} bytes again from Seq {seq} right after a duplicate ACK "
            "for byte {seq} whose SACK blocks showed later bytes had arrived: loss recovery "
            "with SACK (RFC 6675), not a timeout.").format(side=side, length=length, seq=seq)
    if Note.OUT_OF_ORDER in kinds:
        return None
    return Why.TIMEOUT, _(
        "{side} sends {length} bytes again from Seq {seq}: no ACK came for them within the "
        "retransmission timeout.").format(side=side, length=length, seq=seq)


def _fin_sentence(a: Annotated, side: str, other: str, own: Side,
                  peer: Side) -> tuple[Why, str]:
    p = a.packet
    length, seq, ack = p.payload_len, a.seq, a.ack
    fin = seq + length
    peer_fin = peer.fin_seq >= 0 and p.flags & ACK and ack == peer.fin_seq + 1
    if peer_fin and own.acked != ack:
        return Why.FIN_ACKS_FIN, _(
            "FIN: {side} has nothing more to send either (the FIN takes Seq {fin}); Ack {ack} "
            "= Seq {pfin} + 1 acknowledges {other}'s FIN; from now on {side} waits for the "
            "ACK of its own FIN (LAST_ACK).").format(side=side, fin=fin, ack=ack, pfin=peer.fin_seq,
                                               other=other)
    if peer_fin:
        return Why.FIN_LAST_ACK, _(
            "FIN: {side} has nothing more to send either (the FIN takes Seq {fin}); {other} "
            "closed its side earlier, so nothing more can arrive, and {side} now waits for "
            "the ACK of its FIN (LAST_ACK).").format(side=side, fin=fin, other=other)
    if length > 0:
        return Why.FIN_DATA, _(
            "{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: it has "
            "nothing more to send; the FIN takes Seq {fin} = {seq} + {length}.").format(
            side=side, length=length, preview=preview(p.payload, PREVIEW), seq=seq, fin=fin)
    return Why.FIN, _(
        "FIN: {side} has nothing more to send; the FIN takes Seq {seq} and carries no byte. "
        "After shutdown() {side} can still receive; after close(), data that still arrives "
        "is answered with RST.").format(side=side, seq=seq)


def fin_call_sentence(a: Annotated, side: str, kind: CallKind, how: str) -> tuple[Why, str]:
    """A FIN (with or without its last bytes) that a recorded close() or shutdown() sent."""
    p = a.packet
    length, seq = p.payload_len, a.seq
    call = f"shutdown({how})" if kind is CallKind.SHUTDOWN else "close()"
    still_reads = kind is CallKind.SHUTDOWN and how == "SHUT_WR"
    why = Why.FIN_SHUTDOWN if kind is CallKind.SHUTDOWN else Why.FIN_CLOSE
    if length > 0 and still_reads:
        return why, _(
            "{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: its "
            "program called {call} (recorded), so it sends nothing more and can still "
            "receive; the FIN takes Seq {fin} = {seq} + {length}.").format(
            side=side, length=length, preview=preview(p.payload, PREVIEW), seq=seq,
            fin=seq + length, call=call)
    if length > 0:
        return why, _(
            "{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: its "
            "program called {call} (recorded), so it sends and reads nothing more, and data "
            "that still arrives is answered with RST; the FIN takes Seq {fin} = {seq} + "
            "{length}.").format(side=side, length=length, preview=preview(p.payload, PREVIEW),
                                seq=seq, fin=seq + length, call=call)
    if still_reads:
        return why, _(
            "FIN: {side}'s program called {call} (recorded): it has nothing more to send and "
            "can still receive. The FIN takes Seq {seq} and carries no byte.").format(
            side=side, call=call, seq=seq)
    return why, _(
        "FIN: {side}'s program called {call} (recorded): it sends and reads nothing more, "
        "and data that still arrives is answered with RST. The FIN takes Seq {seq} and "
        "carries no byte.").format(side=side, call=call, seq=seq)


def _dupack_sentence(a: Annotated, side: str, other: str, own: Side,
                     peer: Side) -> tuple[Why, str]:
    ack = a.ack
    blocks = sack_blocks(a)
    if is_dsack(a, blocks):
        left, right = blocks[0]
        return Why.DSACK, _(
            "{side} repeats Ack {ack} with a D-SACK block {left}-{right}: those bytes arrived "
            "twice (RFC 2883). Nothing is missing; the ACK tells {other} that its "
            "retransmission was not needed.").format(side=side, ack=ack, left=left,
                                                     right=right, other=other)
    if fastclose(a):
        return Why.FASTCLOSE, _(
            "{side} repeats Ack {ack} with MPTCP's MP_FASTCLOSE option: it closes the whole "
            "MPTCP connection at once (RFC 8684 3.5); nothing is missing.").format(
            side=side, ack=ack)
    if peer.fin_seq >= 0 and ack == peer.fin_seq + 1 and peer.fin_again:
        if own.fin_seq >= 0:
            return Why.FIN_ACK_AGAIN, _(
                "{side} acknowledges {other}'s re-sent FIN again: Ack {ack} = Seq {fin} + 1. "
                "Its first ACK was lost or late; {side} is in TIME_WAIT, which exists to "
                "answer exactly this.").format(side=side, other=other, ack=ack,
                                               fin=peer.fin_seq)
        return Why.FIN_ACK_AGAIN, _(
            "{side} acknowledges {other}'s re-sent FIN again: Ack {ack} = Seq {fin} + 1; its "
            "first ACK was lost or late.").format(side=side, other=other, ack=ack,
                                                  fin=peer.fin_seq)
    if blocks:
        return Why.DUPLICATE_ACK_SACK, _(
            "{side} repeats Ack {ack}: later bytes arrived (SACK {blocks}), but not byte "
            "{ack}, the one it waits for.").format(side=side, ack=ack, blocks=sack_text(blocks))
    return Why.DUPLICATE_ACK, _(
        "{side} repeats Ack {ack}: a segment arrived, but not byte {ack}, the one it waits "
        "for.").format(side=side, ack=ack)


def _data_or_ack_sentence(a: Annotated, side: str, other: str, own: Side, peer: Side,
                          kinds: frozenset[Note]) -> tuple[Why, str]:
    p = a.packet
    length, ack = p.payload_len, a.ack
    what, start, count = _acked(a, own, peer)
    if length > 0:
        return _data_sentence(a, side, other, peer, what, start, count)
    if what == ACKED_DATA:
        return Why.ACK, _(
            "{side} acknowledges the {count} bytes of {acked}: Ack {ack} = Seq {start} + "
            "{count}.").format(side=side, count=count, acked=peer.data_preview, ack=ack,
                               start=start)
    if what == ACKED_FIN:
        return Why.ACK, _(
            "{side} acknowledges {other}'s FIN: Ack {ack} = Seq {start} + 1 (the FIN takes "
            "one sequence number and carries no byte).").format(
            side=side, other=other, ack=ack, start=start)
    if what == ACKED_BYTES_FIN:
        return Why.ACK, _(
            "{side} acknowledges {count} bytes and {other}'s FIN: Ack {ack} = Seq {start} + "
            "{count} + 1 (the FIN takes one sequence number).").format(
            side=side, count=count - 1, other=other, ack=ack, start=start)
    if what:
        return Why.ACK, _("{side} acknowledges {count} bytes: Ack {ack} = Seq {start} + "
                          "{count}.").format(side=side, count=count, ack=ack, start=start)
    if Note.WINDOW_UPDATE in kinds:
        return _window_sentence(a, side, own)
    return Why.ACK, _("{side} acknowledges every byte before Seq {ack}: Ack {ack} is the next "
                      "byte it expects.").format(side=side, ack=ack)


def _data_sentence(a: Annotated, side: str, other: str, peer: Side, what: int, start: int,
                   count: int) -> tuple[Why, str]:
    """A segment that carries bytes, and what its Ack newly covers (:func:`_acked`)."""
    length, seq, ack = a.packet.payload_len, a.seq, a.ack
    data = preview(a.packet.payload, PREVIEW)
    if what == ACKED_DATA:
        return Why.DATA, _(
            "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges the "
            "{count} bytes of {acked}: Ack {ack} = Seq {start} + {count}.").format(
            side=side, length=length, preview=data, seq=seq, count=count,
            acked=peer.data_preview, ack=ack, start=start)
    if what == ACKED_BYTES_FIN:
        return Why.DATA, _(
            "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
            "{count} bytes and {other}'s FIN: Ack {ack} = Seq {start} + {count} + 1 (the "
            "FIN takes one sequence number).").format(
            side=side, length=length, preview=data, seq=seq, count=count - 1,
            other=other, ack=ack, start=start)
    if what == ACKED_FIN:
        return Why.DATA, _(
            "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
            "{other}'s FIN: Ack {ack} = Seq {start} + 1 (the FIN takes one sequence "
            "number and carries no byte).").format(
            side=side, length=length, preview=data, seq=seq, other=other, ack=ack,
            start=start)
    if what:
        return Why.DATA, _(
            "{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges "
            "{count} bytes: Ack {ack} = Seq {start} + {count}.").format(
            side=side, length=length, preview=data, seq=seq, count=count, ack=ack,
            start=start)
    return Why.DATA, _(
        "{side} sends {length} bytes ({preview}) at Seq {seq}; its next byte will be Seq "
        "{next} = {seq} + {length}.").format(
        side=side, length=length, preview=data, seq=seq, next=seq + length)


def _window_sentence(a: Annotated, side: str, own: Side) -> tuple[Why, str]:
    """A bare window update: with SACK blocks (a resize while bytes wait), smaller, larger."""
    ack = a.ack
    blocks = sack_blocks(a)
    if blocks:
        return Why.WINDOW_SACK, _(
            "{side} announces a window of {window} bytes while Ack {ack} still waits for "
            "byte {ack} and later bytes wait in its buffer (SACK {blocks}): no new byte "
            "arrived in order, so this is no ACK of new data; the kernel resized the "
            "window it offers.").format(
            side=side, window=a.win, ack=ack, blocks=sack_text(blocks))
    if own.win >= 0 and a.win < own.win:
        return Why.WINDOW_UPDATE, _(
            "{side} announces a smaller window: {window} bytes (was {before}), with "
            "nothing else in the segment.").format(side=side, window=a.win,
                                                   before=own.win)
    return Why.WINDOW_UPDATE, _(
        "{side} has read data and announces a larger window: {window} bytes (was "
        "{before}).").format(side=side, window=a.win, before=own.win)


ACKED_DATA, ACKED_FIN, ACKED_BYTES, ACKED_BYTES_FIN = 1, 2, 3, 4


def _acked(a: Annotated, own: Side, peer: Side) -> tuple[int, int, int]:
    """What this segment's Ack newly covers: ``(kind, start, count)``, kind 0 for nothing
    new; ``start`` is the Ack this side sent before, ``count`` the sequence numbers since
    (bytes, plus one when the peer's FIN is among them: a FIN carries no byte)."""
    if not a.packet.flags & ACK or own.acked < 0 or (a.ack - own.acked) % MOD32 >= MOD32 // 2 \
            or a.ack == own.acked:
        return 0, 0, 0
    start, count = own.acked, a.ack - own.acked
    if peer.fin_seq >= 0 and start <= peer.fin_seq < a.ack:
        return (ACKED_FIN if count == 1 else ACKED_BYTES_FIN), start, count
    if peer.data_seq == start and peer.data_len == count:
        return ACKED_DATA, start, count
    return ACKED_BYTES, start, count
