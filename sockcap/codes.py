"""Codes, not sentences: phases, notes, roles and outcomes, and the words for each.

A code is an :class:`enum.Enum` member whose value is the stable string that ``--json``,
``stats --json`` and the golden files carry; being a ``str`` it compares equal to that
string and formats as it, so scripts and the hot paths see no difference. The words a
person reads come from the tables below, looked up by code and translated by
:func:`sockcap.i18n._` where they are shown: renaming a word never breaks JSON, and a
catalogue can translate every one.

Notes that carry a number (``duplicate ACK #3``, ``unsupported link type 147``) are a
:class:`CountedNote`: a ``str`` (its JSON text) that also holds its kind and number.
"""

from __future__ import annotations

import enum

from sockcap.i18n import N_, _


class Code(str, enum.Enum):
    """A code whose ``str()`` and ``format()`` are its value (the stable JSON string)."""

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


class Phase(Code):
    """Where a packet stands in its connection (the timeline's phase column).

    A phase is decided when its packet is seen, from the packets before it: the timeline
    streams and prints a SYN before any answer comes. So a SYN is ``handshake 1/3``
    (the first step of a handshake that was attempted) even when the answer turns out
    to be an RST; that RST's phase (``reset``) and note (``connection refused``) say
    what happened, and the summaries give such a connection no handshake RTT.
    """

    NONE = ""  # neither TCP nor UDP
    HANDSHAKE_1 = "handshake 1/3"
    HANDSHAKE_2 = "handshake 2/3"
    HANDSHAKE_3 = "handshake 3/3"
    DATA = "data"
    ACK = "ack"
    TEARDOWN = "teardown"
    RESET = "reset"

    @property
    def is_handshake(self) -> bool:
        return self in _HANDSHAKE


_HANDSHAKE = frozenset({Phase.HANDSHAKE_1, Phase.HANDSHAKE_2, Phase.HANDSHAKE_3})


class Roles(Code):
    """How a conversation's client and server were told apart."""

    FROM_SYN = "syn"  # the SYN's sender is the client
    GUESSED = "ports"  # no handshake seen: the lower port is the server's
    FIRST_SENDER = "first sender"  # UDP: whoever sent first


class Outcome(Code):
    """How a TCP conversation ended (``stats``' "ended" column)."""

    NONE = ""  # not TCP
    REFUSED = "refused"
    RESET = "reset"
    CLOSED = "FIN both ways"
    HALF_CLOSED = "half-closed"
    OPEN = "still open"
    # the client's SYN and nothing from the server: nothing was ever opened (a server
    # down or filtered, a full backlog), so not "still open"
    UNANSWERED = "SYN unanswered"


class Note(Code):
    """A note on a packet: Wireshark's expert analysis, sockcap's own connection notes,
    and damage the decoder found. Values are the JSON strings of the ``notes`` key."""

    # Wireshark's tcp.analysis.* (see sockcap.analysis.expert)
    RETRANSMISSION = "retransmission"
    SYN_RETRANSMITTED = "SYN retransmitted"
    SPURIOUS_RETRANSMISSION = "spurious retransmission"
    FAST_RETRANSMISSION = "fast retransmission"
    OUT_OF_ORDER = "out-of-order"
    LOST_SEGMENT = "previous segment not captured"
    ACKED_UNSEEN = "ACKed unseen segment"
    DUPLICATE_ACK = "duplicate ACK"
    ZERO_WINDOW = "zero window"
    ZERO_WINDOW_PROBE = "zero window probe"
    ZERO_WINDOW_PROBE_ACK = "zero window probe ACK"
    WINDOW_FULL = "window full"
    WINDOW_UPDATE = "window update"
    KEEP_ALIVE = "keep-alive"
    KEEP_ALIVE_ACK = "keep-alive ACK"
    # sockcap's own, about the connection
    CONNECTION_REFUSED = "connection refused"
    CONNECTION_RESET = "connection reset"
    HALF_CLOSE = "half-close"
    # what confuses learners, said where the timeline shows it (sockcap.render.confusions
    # explains them; contract.CONFUSION_NOTES says where each is put and why)
    PORT_REUSE = "port numbers reused"  # Wireshark's tcp.analysis.reused_ports
    WINDOW_SCALE_UNKNOWN = "window scale unknown"  # no handshake: tcp.window_size_scalefactor -1
    TIME_WAIT = "TIME_WAIT"  # the end that closed first acknowledges the other's FIN
    PARTIAL_CHECKSUM = "partial checksum"  # offload: Wireshark 4.2 "matches partial checksum"
    LARGER_THAN_MTU = "larger than the MTU"  # TSO/GSO/GRO: cut into segments after capture
    PART_OF_MESSAGE = "continues a message"  # the same side's previous segment had no PSH
    NAGLE_STALL = "Nagle stall"  # data held until the peer's delayed ACK
    # an ICMP/ICMPv6 error about a conversation's datagram (on the ICMP packet, and counted
    # in the conversation it quotes)
    PORT_UNREACHABLE = "port unreachable"
    UNREACHABLE = "destination unreachable"
    # damage found by the decoder
    UNSUPPORTED_LINKTYPE = "unsupported link type"
    UNKNOWN_FAMILY = "unknown address family"
    UNKNOWN_IP_VERSION = "unknown ip version"
    VLAN_DEPTH = "too many vlan tags"
    IP_VERSION = "bad ip version"
    IP_HLEN = "bad ip header length"
    IP_LEN = "bad ip total length"
    IP_V6_IN_V4 = "ipv6 header in an ipv4 frame"
    IP_LEN_FRAME = "ip total length exceeds frame"
    IP6_LEN_FRAME = "ipv6 payload length exceeds frame"
    IP6_EXT_LEN = "bad ipv6 extension header length"
    IP6_EXT_MANY = "too many ipv6 extension headers"
    TCP_HLEN = "bad tcp header length"
    TCP_OPTLEN = "bad tcp option length"
    TCP_SHORT = "tcp header cut by ip length"
    UDP_LEN = "bad udp length"
    UDP_SHORT = "udp header cut by ip length"


# The JSON text of a counted note: it never depends on the language.
_COUNTED_JSON = {
    Note.DUPLICATE_ACK: "duplicate ACK #{n}",
    Note.UNSUPPORTED_LINKTYPE: "unsupported link type {n}",
    Note.UNKNOWN_FAMILY: "unknown address family {n}",
    Note.UNKNOWN_IP_VERSION: "unknown ip version {n}",
    Note.LARGER_THAN_MTU: "larger than the MTU: {n} segments",
    Note.NAGLE_STALL: "Nagle stall: {n} ms",
}


# The JSON text of a note about a place (an address and port): never depends on the language.
_PLACED_JSON = {
    Note.PORT_UNREACHABLE: "port unreachable: nothing listens on {where}",
    Note.UNREACHABLE: "destination unreachable: {where}",
}


class PlacedNote(str):
    """A note about a place, e.g. ICMP's port unreachable: equal to its JSON text
    (``"port unreachable: nothing listens on 127.0.0.1:5999"``), with ``kind`` and
    ``where`` kept for the words."""

    kind: Note
    where: str

    def __new__(cls, kind: Note, where: str) -> PlacedNote:
        note = super().__new__(cls, _PLACED_JSON[kind].format(where=where))
        note.kind = kind
        note.where = where
        return note


class CountedNote(str):
    """A note with a number, e.g. the third duplicate ACK in a row: equal to its JSON
    text (``"duplicate ACK #3"``), with ``kind`` and ``n`` kept for the words."""

    kind: Note
    n: int

    def __new__(cls, kind: Note, n: int) -> CountedNote:
        note = super().__new__(cls, _COUNTED_JSON[kind].format(n=n))
        note.kind = kind
        note.n = n
        return note


def counted_json(kind: Note) -> str:
    """The JSON text of a counted note of ``kind``, with ``{n}`` where its number goes."""
    return _COUNTED_JSON[kind]


def note_kind(note: str) -> Note:
    """The kind of a note: ``duplicate ACK #3`` -> ``Note.DUPLICATE_ACK``.

    Accepts the plain JSON text too (a note read back from ``--json``)."""
    kind = getattr(note, "kind", None)
    if kind is not None:
        return kind  # type: ignore[no-any-return]
    try:
        return Note(note)
    except ValueError:
        for counted, template in (*_COUNTED_JSON.items(), *_PLACED_JSON.items()):
            if note.startswith(template.split("{")[0]):
                return counted
        raise


# -- words -------------------------------------------------------------------------------

PHASE_WORDS = {
    Phase.NONE: "",
    Phase.HANDSHAKE_1: N_("handshake 1/3"),
    Phase.HANDSHAKE_2: N_("handshake 2/3"),
    Phase.HANDSHAKE_3: N_("handshake 3/3"),
    Phase.DATA: N_("data"),
    Phase.ACK: N_("ack"),
    Phase.TEARDOWN: N_("teardown"),
    Phase.RESET: N_("reset"),
}

OUTCOME_WORDS = {
    Outcome.NONE: "",
    Outcome.REFUSED: N_("refused"),
    Outcome.RESET: N_("reset"),
    Outcome.CLOSED: N_("FIN both ways"),
    Outcome.HALF_CLOSED: N_("half-closed"),
    Outcome.OPEN: N_("still open"),
    Outcome.UNANSWERED: N_("SYN never answered"),
}

# Notes about how the capture was taken, not about the exchange (the checksum the card
# would have filled in): the timeline and --explain say them; the diagrams (ladder,
# Mermaid, SVG, the report's) leave them off the arrows, which draw the exchange.
CAPTURE_NOTES = frozenset({Note.PARTIAL_CHECKSUM})

NOTE_WORDS = {
    Note.RETRANSMISSION: N_("retransmission"),
    Note.SYN_RETRANSMITTED: N_("SYN retransmitted"),
    Note.SPURIOUS_RETRANSMISSION: N_("spurious retransmission"),
    Note.FAST_RETRANSMISSION: N_("fast retransmission"),
    Note.OUT_OF_ORDER: N_("out-of-order"),
    Note.LOST_SEGMENT: N_("previous segment not captured"),
    Note.ACKED_UNSEEN: N_("ACKed unseen segment"),
    Note.DUPLICATE_ACK: N_("duplicate ACK"),
    Note.ZERO_WINDOW: N_("zero window"),
    Note.ZERO_WINDOW_PROBE: N_("zero window probe"),
    Note.ZERO_WINDOW_PROBE_ACK: N_("zero window probe ACK"),
    Note.WINDOW_FULL: N_("window full"),
    Note.WINDOW_UPDATE: N_("window update"),
    Note.KEEP_ALIVE: N_("keep-alive"),
    Note.KEEP_ALIVE_ACK: N_("keep-alive ACK"),
    Note.CONNECTION_REFUSED: N_("connection refused"),
    Note.CONNECTION_RESET: N_("connection reset"),
    Note.HALF_CLOSE: N_("half-close"),
    Note.PORT_REUSE: N_("port numbers reused"),
    Note.WINDOW_SCALE_UNKNOWN: N_("window scale unknown"),
    Note.TIME_WAIT: N_("enters TIME_WAIT"),
    Note.PARTIAL_CHECKSUM: N_("partial checksum: offload, once per connection"),
    Note.LARGER_THAN_MTU: N_("larger than the MTU: cut into segments later, TSO/GSO"),
    Note.PART_OF_MESSAGE: N_("continues the previous segment's message: no PSH there"),
    Note.NAGLE_STALL: N_("held back by Nagle until a delayed ACK"),
    Note.PORT_UNREACHABLE: N_("port unreachable"),
    Note.UNREACHABLE: N_("destination unreachable"),
    Note.UNSUPPORTED_LINKTYPE: N_("unsupported link type"),
    Note.UNKNOWN_FAMILY: N_("unknown address family"),
    Note.UNKNOWN_IP_VERSION: N_("unknown ip version"),
    Note.VLAN_DEPTH: N_("too many vlan tags"),
    Note.IP_VERSION: N_("bad ip version"),
    Note.IP_HLEN: N_("bad ip header length"),
    Note.IP_LEN: N_("bad ip total length"),
    Note.IP_V6_IN_V4: N_("ipv6 header in an ipv4 frame"),
    Note.IP_LEN_FRAME: N_("ip total length exceeds frame"),
    Note.IP6_LEN_FRAME: N_("ipv6 payload length exceeds frame"),
    Note.IP6_EXT_LEN: N_("bad ipv6 extension header length"),
    Note.IP6_EXT_MANY: N_("too many ipv6 extension headers"),
    Note.TCP_HLEN: N_("bad tcp header length"),
    Note.TCP_OPTLEN: N_("bad tcp option length"),
    Note.TCP_SHORT: N_("tcp header cut by ip length"),
    Note.UDP_LEN: N_("bad udp length"),
    Note.UDP_SHORT: N_("udp header cut by ip length"),
}

COUNTED_WORDS = {
    Note.DUPLICATE_ACK: N_("duplicate ACK #{n}"),
    Note.UNSUPPORTED_LINKTYPE: N_("unsupported link type {n}"),
    Note.UNKNOWN_FAMILY: N_("unknown address family {n}"),
    Note.UNKNOWN_IP_VERSION: N_("unknown ip version {n}"),
    Note.LARGER_THAN_MTU: N_("larger than the MTU: {n} segments on a wire, TSO/GSO"),
    Note.NAGLE_STALL: N_("held back {n} ms by Nagle until a delayed ACK"),
}

PLACED_WORDS = {
    Note.PORT_UNREACHABLE: N_("port unreachable: nothing listens on {where}"),
    Note.UNREACHABLE: N_("destination unreachable: {where}"),
}

# What each note means, in a sentence (``--explain``). Decoder damage has none: the
# timeline shows it where it is.
NOTE_EXPLANATIONS = {
    Note.RETRANSMISSION: N_("The sender sent bytes it had sent before; the sentence under each packet says why, from what the capture shows: a timeout, duplicate ACKs, SACK, or one packet seen twice (copied by the capture or the link)."),
    Note.SYN_RETRANSMITTED: N_("A SYN or SYN-ACK sent again because no answer came back in time (or one packet seen twice, copied by the capture or the link: see the sentence under it)."),
    Note.SPURIOUS_RETRANSMISSION: N_("Bytes sent again although the receiver had already ACKed them: the first copy arrived, but its ACK was lost or late, so the retransmission was not needed."),
    Note.FAST_RETRANSMISSION: N_("Bytes sent again right after duplicate ACKs said they were missing, without waiting for a timeout."),
    Note.OUT_OF_ORDER: N_("This segment arrived after one with a higher sequence number."),
    Note.LOST_SEGMENT: N_("There is a hole before this segment: bytes were sent that the capture did not see."),
    Note.ACKED_UNSEEN: N_("This ACKs bytes that the capture never saw being sent."),
    Note.DUPLICATE_ACK: N_("The receiver repeated its last ACK; usually it got a segment, but not the one it was waiting for (the sentence under each packet says when it is something else: D-SACK, a re-sent FIN, a copy)."),
    Note.ZERO_WINDOW: N_("The receiver's buffer is full: it asks the sender to stop until it reads."),
    Note.ZERO_WINDOW_PROBE: N_("One byte sent into a zero window to ask whether the receiver has room again."),
    Note.ZERO_WINDOW_PROBE_ACK: N_("The answer to a zero window probe: the window is still zero."),
    Note.WINDOW_FULL: N_("The sender has filled all the room the receiver offered and must wait for an ACK."),
    Note.WINDOW_UPDATE: N_("The receiver read data and announces more room, with nothing else in the segment."),
    Note.KEEP_ALIVE: N_("A probe one byte behind the sequence, sent on an idle connection to see if the peer is still there."),
    Note.KEEP_ALIVE_ACK: N_("The peer's answer to a keep-alive: it is still there."),
    Note.CONNECTION_REFUSED: N_("Nothing listened on that port: the SYN was answered with RST."),
    Note.CONNECTION_RESET: N_("One side aborted the connection with RST; unsent and unread data is thrown away."),
    Note.HALF_CLOSE: N_("One side sent FIN (shutdown for writing) and the other side kept sending data."),
    Note.PORT_REUSE: N_("A new connection on the same addresses and ports as an earlier one of the capture (a new SYN with another sequence number): allowed once the old one is over (TIME_WAIT passed, or SO_REUSEADDR)."),
    Note.WINDOW_SCALE_UNKNOWN: N_("The connection's handshake is not in the capture, so its window scale is unknown: the Win field is shown raw, and the real window may be up to 2^14 times larger."),
    Note.TIME_WAIT: N_("The end that closed first has acknowledged the other's FIN and now stays in TIME_WAIT (60 s on Linux) to answer a FIN that might come again: until then, binding its port again fails with EADDRINUSE (unless SO_REUSEADDR)."),
    Note.PARTIAL_CHECKSUM: N_("The TCP checksum field holds only the pseudo-header's sum: the kernel leaves the checksum to the network card (checksum offload; on loopback and veth nothing ever fills it in), so Wireshark 4.2 calls it partial, not bad. Nothing is wrong; said once per connection, on its first packet that shows it."),
    Note.LARGER_THAN_MTU: N_("The kernel handed the capture one chunk larger than the link's MTU (the receiver's MSS plus headers when the handshake was seen, else 1500 bytes): it is cut into segments of at most one MSS after the capture (TSO/GSO; GRO joins them when receiving), so on a real wire it leaves as several segments."),
    Note.PART_OF_MESSAGE: N_("The same side's previous segment had no PSH and this one carries the bytes right after it: one write spread over several segments (TCP carries a stream of bytes without message boundaries; Wireshark calls the earlier pieces \"TCP segment of a reassembled PDU\"). Said on the segment that goes on, because only it shows that the message went on."),
    Note.NAGLE_STALL: N_("These bytes were held back: the peer's ACK of this side's previous small segment came 20 ms or more after it (a delayed ACK: up to 40 ms on Linux), and these followed at once (Nagle's algorithm waits for that ACK). The program wrote one message in pieces: write it whole, or set TCP_NODELAY."),
    Note.PORT_UNREACHABLE: N_("Nothing listened on the port a datagram was sent to: the receiving host answered with ICMP port unreachable (the UDP counterpart of a refused connection)."),
    Note.UNREACHABLE: N_("A router or the receiving host could not deliver the datagram and said so with an ICMP destination unreachable."),
}


def note_text(note: str) -> str:
    """A note in the reader's language: ``duplicate ACK #3`` / ``ACK duplikat #3``."""
    kind = note_kind(note)
    if kind in PLACED_WORDS and note != kind.value:
        where = getattr(note, "where", None)
        if where is None:
            where = note.rsplit(" ", 1)[-1]
        return _(PLACED_WORDS[kind]).format(where=where)
    if isinstance(note, CountedNote) or (kind in COUNTED_WORDS and note != kind.value):
        n = getattr(note, "n", None)
        if n is None:  # the JSON text: its one number ("#3", "228", "10 segments")
            n = int(next(w for w in note.replace("#", " ").split() if w.isdigit()))
        return _(COUNTED_WORDS[kind]).format(n=n)
    return _(NOTE_WORDS[kind])


def phase_text(phase: Phase | str) -> str:
    """A phase in the reader's language."""
    return _(PHASE_WORDS[Phase(phase)]) if phase else ""


def outcome_text(outcome: Outcome | str) -> str:
    """How a conversation ended, in the reader's language."""
    return _(OUTCOME_WORDS[Outcome(outcome)]) if outcome else ""


def explanation(kind: Note) -> str | None:
    """What a note means, in a sentence (None for decoder damage)."""
    text = NOTE_EXPLANATIONS.get(kind)
    return _(text) if text is not None else None
