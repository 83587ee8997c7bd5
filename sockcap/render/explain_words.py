"""The words of ``--explain``'s per-packet sentences, as the compiled engine is handed
them (pure): each template whole, by name, in the engine's order (its ``E_*`` numbers,
``sockcap/_engine_contract.h``), translated when the engine is made.

Why a table: the compiled engine writes each packet's sentence itself (issue 23: the
sentences in Python cost ~31 µs a packet, `--explain` was 95x plain `show`), and it must
write the reader's language, from the catalogue, with no English in C. The reference
sentences are :mod:`sockcap.render.tcp_sentences`' (and :mod:`sockcap.render.explain`'s
UDP sentence, :mod:`sockcap.render.confusions`' WORDS): each message here is the same
msgid as theirs, one catalogue entry, and ``tests/test_explain_engine.py`` fails when a
message here is not word for word one of theirs (so the two cannot drift apart), besides
comparing both engines' sentences byte for byte.
"""

from __future__ import annotations

import functools
import string
from typing import Any

from sockcap.decode.records import TcpFlags
from sockcap.i18n import N_, _, catalogue
from sockcap.render.confusions import WORDS as CONFUSION_WORDS
from sockcap.render.confusions import Confusion
from sockcap.render.segment_cases import SIDE_WORDS, Why

# The sentences of one segment (or datagram), by the case that chose them.
SENTENCES: dict[str, str] = {
    'UDP': N_(
        '{side} sends a datagram of {length} bytes ({preview}); UDP has no '
        'connection, no sequence numbers and no acknowledgements.'),
    'INVALID_FLAGS': N_(
        '{side} sends a segment with the flags {flags} at once: SYN with FIN or RST, '
        'or FIN with RST, is a combination no TCP stack sends (RFC 9293); it is '
        'crafted, a scan or damage, and a receiver drops it.'),
    'COPY': N_(
        'The same packet as no. {no}, seen a second time {ms} ms later (same IP ID '
        '{id}, same Seq, Ack and flags): {side} sent it once; the copy was made after'
        ' it left, by the capture (two interfaces, a mirrored port) or by the link (a'
        ' network that duplicates packets delivers both). It is neither a '
        'retransmission nor a duplicate ACK.'),
    'REFUSED': N_(
        'RST: nothing listens on port {port}, so {side} refuses the connection; the '
        "client's connect() fails with ECONNREFUSED."),
    'RESET_DATA': N_(
        'RST: {side} aborts the connection; data not yet read is thrown away and '
        "{other}'s next call fails with ECONNRESET. The RST carries {length} bytes "
        '({preview}): a text some stacks and middleboxes add to say why (RFC 9293 '
        '3.5.3).'),
    'RESET': N_(
        'RST: {side} aborts the connection; data not yet read is thrown away and '
        "{other}'s next call fails with ECONNRESET."),
    'SYN_AGAIN': N_(
        '{side} sends its SYN again: no SYN-ACK came back in time.'),
    'SYN_DATA': N_(
        '{side} asks to open a connection and already sends {length} bytes of data '
        'with the SYN ({preview}: TCP Fast Open, RFC 7413); its first sequence number'
        ' (shown as 0) is {isn}, the SYN takes Seq 0 and the data Seq 1 to {length}.'),
    'SYN': N_(
        '{side} asks to open a connection; its first sequence number (shown as 0) is '
        '{isn}.'),
    'SYN_ACK_AGAIN': N_(
        '{side} sends its SYN-ACK again: no ACK for it came back in time.'),
    'SYN_ACK_DATA': N_(
        '{side} agrees and opens its own direction; its first sequence number (shown '
        'as 0) is {isn}. Ack {ack} = Seq 0 + 1 + {length}: the SYN took one sequence '
        'number and its {length} data bytes the next ones.'),
    'SYN_ACK': N_(
        '{side} agrees and opens its own direction; its first sequence number (shown '
        'as 0) is {isn}. Ack {ack} = Seq 0 + 1: the SYN takes one sequence number and'
        ' carries no byte.'),
    'OUT_OF_ORDER': N_(
        '{side} sends {length} bytes at Seq {seq}, below bytes it sent before: they '
        'arrive out of order (or the capture saw them late).'),
    'SPURIOUS': N_(
        '{side} sends {length} bytes again from Seq {seq}, although {other} had '
        'already acknowledged them (Ack {acked}): the first copy arrived, but {side} '
        'did not get that ACK in time (it was lost or late), so this copy was not '
        'needed — a spurious retransmission.'),
    'FIN_AGAIN': N_(
        '{side} sends its FIN again (Seq {seq}): no ACK for the FIN came in time. The'
        ' FIN takes one sequence number and carries no byte.'),
    'FAST': N_(
        '{side} sends {length} bytes again from Seq {seq} right after {count} '
        'duplicate ACKs asked for byte {seq}: a fast retransmission (RFC 5681 3.2), '
        'without waiting for a timeout.'),
    'SACK_RECOVERY': N_(
        '{side} sends {length} bytes again from Seq {seq} right after a duplicate ACK'
        ' for byte {seq} whose SACK blocks showed later bytes had arrived: loss '
        'recovery with SACK (RFC 6675), not a timeout.'),
    'TIMEOUT': N_(
        '{side} sends {length} bytes again from Seq {seq}: no ACK came for them '
        'within the retransmission timeout.'),
    'FIN_ACKS_FIN': N_(
        'FIN: {side} has nothing more to send either (the FIN takes Seq {fin}); Ack '
        "{ack} = Seq {pfin} + 1 acknowledges {other}'s FIN; from now on {side} waits "
        'for the ACK of its own FIN (LAST_ACK).'),
    'FIN_LAST_ACK': N_(
        'FIN: {side} has nothing more to send either (the FIN takes Seq {fin}); '
        '{other} closed its side earlier, so nothing more can arrive, and {side} now '
        'waits for the ACK of its FIN (LAST_ACK).'),
    'FIN_DATA': N_(
        '{side} sends its last {length} bytes ({preview}) at Seq {seq} with FIN: it '
        'has nothing more to send; the FIN takes Seq {fin} = {seq} + {length}.'),
    'FIN': N_(
        'FIN: {side} has nothing more to send; the FIN takes Seq {seq} and carries no'
        ' byte. After shutdown() {side} can still receive; after close(), data that '
        'still arrives is answered with RST.'),
    'HANDSHAKE_ACK': N_(
        '{side} acknowledges the SYN-ACK: Ack {ack} = Seq 0 + 1 (the SYN took one '
        'sequence number). The connection is open.'),
    'ZERO_WINDOW': N_(
        '{side} announces a window of 0: its receive buffer is full, and {other} must'
        ' wait until it reads.'),
    'ZERO_WINDOW_PROBE': N_(
        '{side} sends one byte into the zero window to ask whether there is room '
        'again.'),
    'ZERO_WINDOW_PROBE_KEEP_ALIVE': N_(
        "{side} probes {other}'s zero window: it sends Seq {seq}, one below the next "
        "byte, so that {other} must answer with its current window (Linux's zero "
        'window probe; Wireshark calls its shape a keep-alive).'),
    'KEEP_ALIVE': N_(
        '{side} checks whether {other} is still there (a keep-alive): Seq {seq} is '
        'one below the next byte, so {other} must answer with an ACK.'),
    'DSACK': N_(
        '{side} repeats Ack {ack} with a D-SACK block {left}-{right}: those bytes '
        'arrived twice (RFC 2883). Nothing is missing; the ACK tells {other} that its'
        ' retransmission was not needed.'),
    'FASTCLOSE': N_(
        "{side} repeats Ack {ack} with MPTCP's MP_FASTCLOSE option: it closes the "
        'whole MPTCP connection at once (RFC 8684 3.5); nothing is missing.'),
    'FIN_ACK_AGAIN_TIME_WAIT': N_(
        "{side} acknowledges {other}'s re-sent FIN again: Ack {ack} = Seq {fin} + 1. "
        'Its first ACK was lost or late; {side} is in TIME_WAIT, which exists to '
        'answer exactly this.'),
    'FIN_ACK_AGAIN': N_(
        "{side} acknowledges {other}'s re-sent FIN again: Ack {ack} = Seq {fin} + 1; "
        'its first ACK was lost or late.'),
    'DUPLICATE_ACK_SACK': N_(
        '{side} repeats Ack {ack}: later bytes arrived (SACK {blocks}), but not byte '
        '{ack}, the one it waits for.'),
    'DUPLICATE_ACK': N_(
        '{side} repeats Ack {ack}: a segment arrived, but not byte {ack}, the one it '
        'waits for.'),
    'ACK_DATA': N_(
        '{side} acknowledges the {count} bytes of {acked}: Ack {ack} = Seq {start} + '
        '{count}.'),
    'ACK_FIN': N_(
        "{side} acknowledges {other}'s FIN: Ack {ack} = Seq {start} + 1 (the FIN "
        'takes one sequence number and carries no byte).'),
    'ACK_BYTES_FIN': N_(
        "{side} acknowledges {count} bytes and {other}'s FIN: Ack {ack} = Seq {start}"
        ' + {count} + 1 (the FIN takes one sequence number).'),
    'ACK_BYTES': N_(
        '{side} acknowledges {count} bytes: Ack {ack} = Seq {start} + {count}.'),
    'ACK': N_(
        '{side} acknowledges every byte before Seq {ack}: Ack {ack} is the next byte '
        'it expects.'),
    'DATA_ACKED_DATA': N_(
        '{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges the '
        '{count} bytes of {acked}: Ack {ack} = Seq {start} + {count}.'),
    'DATA_ACKED_BYTES_FIN': N_(
        '{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges '
        "{count} bytes and {other}'s FIN: Ack {ack} = Seq {start} + {count} + 1 (the "
        'FIN takes one sequence number).'),
    'DATA_ACKED_FIN': N_(
        '{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges '
        "{other}'s FIN: Ack {ack} = Seq {start} + 1 (the FIN takes one sequence "
        'number and carries no byte).'),
    'DATA_ACKED_BYTES': N_(
        '{side} sends {length} bytes ({preview}) at Seq {seq} and acknowledges '
        '{count} bytes: Ack {ack} = Seq {start} + {count}.'),
    'DATA': N_(
        '{side} sends {length} bytes ({preview}) at Seq {seq}; its next byte will be '
        'Seq {next} = {seq} + {length}.'),
    'WINDOW_SACK': N_(
        '{side} announces a window of {window} bytes while Ack {ack} still waits for '
        'byte {ack} and later bytes wait in its buffer (SACK {blocks}): no new byte '
        'arrived in order, so this is no ACK of new data; the kernel resized the '
        'window it offers.'),
    'WINDOW_SMALLER': N_(
        '{side} announces a smaller window: {window} bytes (was {before}), with '
        'nothing else in the segment.'),
    'WINDOW_LARGER': N_(
        '{side} has read data and announces a larger window: {window} bytes (was '
        '{before}).'),
}
# what confuses learners, in the engine's order (contract.CONFUSION_NOTES' is another)
CONFUSIONS = (Confusion.PARTIAL_CHECKSUM, Confusion.LARGER_THAN_MTU,
              Confusion.WINDOW_SCALE_UNKNOWN, Confusion.PART_OF_MESSAGE,
              Confusion.NAGLE_STALL, Confusion.TIME_WAIT, Confusion.PORT_REUSE)
# every template the engine fills: the sentences, then the confusions (C_*)
TEMPLATES: dict[str, str] = {
    **SENTENCES, **{f"C_{kind.name}": CONFUSION_WORDS[kind] for kind in CONFUSIONS}}
WHYS = tuple(Why)  # the engine's case numbers (W_*): the enum's order


def places(message: str) -> tuple[str, ...]:
    """A template's placeholders, each once, in the order they first appear."""
    return tuple(dict.fromkeys(name for _lit, name, _spec, _conv
                               in string.Formatter().parse(message) if name))


@functools.cache
def flag_names() -> list[str]:
    """The INVALID_FLAGS sentence's ``{flags}`` of each 9-bit flags value, as
    ``TcpFlags(flags & 0x1FF).name`` gives it (Python's composite flag name)."""
    return [TcpFlags(f).name or str(f) for f in range(512)]


_WORDS: dict[object, dict[str, Any]] = {}  # explain_words() of each language, made once


def explain_words() -> dict[str, Any]:
    """``Engine(explain=)``: the translated templates whole (TEMPLATES' order), the two
    sides' words, the flags' names. Made once a catalogue, as
    :func:`sockcap.pipeline.contract.engine_words`."""
    words = _WORDS.get(catalogue())
    if words is None:
        words = _WORDS[catalogue()] = _explain_words()
    return dict(words)  # a caller may put its own table in its copy (the tables are shared)


def _explain_words() -> dict[str, Any]:
    return {"templates": [_(message) for message in TEMPLATES.values()],
            "sides": [_(SIDE_WORDS[True]), _(SIDE_WORDS[False])],
            "flags": flag_names()}
