"""Conversations: which connection a packet belongs to, who is client and server, and the
numbers Wireshark shows for it (relative seq/ack, scaled window, phase).

Pure and streaming: :class:`ConversationTracker` takes decoded packets one at a time and
returns an :class:`Annotated` record for each; its state grows with the number of
conversations, not packets, so a million-packet file streams in bounded memory.

Wireshark's rules, followed here so that sockcap's numbers equal tshark's:

- Relative sequence numbers: each direction's base is the SYN's sequence number (so the
  SYN has Seq=0), or, when the direction's first packet seen is not a SYN, that packet's
  sequence number minus one (so it shows Seq=1). A direction whose first packet is not
  seen gets its base from the first ACK the other side sends (ack - 1).
- Window scaling applies to non-SYN segments only once both SYNs were seen and both
  carried the window-scale option; if either SYN lacked it, the window is used as is
  ("no window scaling used"); without the handshake the scale is unknown and the raw
  window is shown.
- Stream numbers count conversations in order of first appearance (``tcp.stream``,
  ``udp.stream``); a new SYN on a 5-tuple whose connection already ended starts a new one.

Roles: the client is whoever sent the SYN (or received the SYN-ACK). Without a handshake,
the endpoint with the lower port is taken as the server (well-known and registered ports
are lower than ephemeral ones) and the conversation says its roles were guessed. For UDP
the first sender is the client.
"""

from __future__ import annotations

from typing import NamedTuple

from sockcap.decode.records import IPPROTO_TCP, IPPROTO_UDP, Packet, TcpOptionKind

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
MOD32 = 1 << 32
SCALE_UNKNOWN = -1  # no SYN seen for this direction
SCALE_NONE = -2  # the SYN had no window-scale option

PHASE_HANDSHAKE = ("handshake 1/3", "handshake 2/3", "handshake 3/3")
ROLES_FROM_SYN = "syn"
ROLES_GUESSED = "ports"
ROLES_FIRST_SENDER = "first sender"


class Direction:
    """What one direction of a TCP connection has shown so far."""

    __slots__ = ("base", "scale", "syn", "fin", "packets", "bytes", "payload_bytes")

    def __init__(self) -> None:
        self.base = -1  # sequence number base, -1 until known
        self.scale = SCALE_UNKNOWN
        self.syn = False
        self.fin = False
        self.packets = 0
        self.bytes = 0  # frame bytes on the wire
        self.payload_bytes = 0


class Conversation:
    """One TCP or UDP conversation (a 5-tuple) and its running state.

    ``dirs[0]`` is client -> server, ``dirs[1]`` server -> client.
    """

    __slots__ = (
        "stream", "proto", "client", "server", "roles", "dirs", "first_ts", "last_ts",
        "syn_ts", "synack_ts", "ack_ts", "handshake_done", "closing", "reset",
    )

    def __init__(self, stream: int, proto: int, client: tuple[str, int],
                 server: tuple[str, int], roles: str, ts: int) -> None:
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

    @property
    def irtt_ns(self) -> int:
        """Initial RTT as Wireshark measures it (SYN to the ACK of the SYN-ACK), -1 unknown."""
        if self.syn_ts < 0 or self.ack_ts < 0:
            return -1
        return self.ack_ts - self.syn_ts

    @property
    def ended(self) -> bool:
        return self.reset or (self.dirs[0].fin and self.dirs[1].fin)


class Annotated(NamedTuple):
    """A packet with what its conversation says about it."""

    no: int  # 1-based packet number, as Wireshark's frame.number
    packet: Packet
    conv: Conversation | None  # None for packets that are neither TCP nor UDP
    from_client: bool  # direction within the conversation
    seq: int  # relative sequence number (TCP), -1 otherwise
    ack: int  # relative acknowledgment number (TCP with ACK set), 0 without ACK, -1 not TCP
    win: int  # window, scaled where the handshake allows it; -1 not TCP
    phase: str  # handshake 1/3 .. 3/3, data, ack, teardown, reset ("" when not TCP/UDP)
    notes: tuple[str, ...]  # decode notes, later analysis notes


def _key(p: Packet) -> tuple[object, ...]:
    a = (p.src, p.sport)
    b = (p.dst, p.dport)
    return (p.proto, a, b) if a <= b else (p.proto, b, a)


class ConversationTracker:
    """Streams packets into conversations; ``feed`` annotates one packet at a time."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[object, ...], Conversation] = {}
        self.conversations: list[Conversation] = []
        self._streams = {IPPROTO_TCP: 0, IPPROTO_UDP: 0}
        self._count = 0

    def feed(self, p: Packet) -> Annotated:
        self._count += 1
        if p.sport < 0 or p.proto not in self._streams:
            return Annotated(self._count, p, None, True, -1, -1, -1, "", p.notes)
        conv = self._conversation(p)
        conv.last_ts = p.ts_ns
        from_client = (p.src, p.sport) == conv.client
        d = conv.dirs[0 if from_client else 1]
        d.packets += 1
        d.bytes += p.wirelen
        d.payload_bytes += p.payload_len
        if p.proto == IPPROTO_UDP:
            return Annotated(self._count, p, conv, from_client, -1, -1, -1, "data", p.notes)
        return self._tcp(p, conv, from_client, d, conv.dirs[1 if from_client else 0])

    def _conversation(self, p: Packet) -> Conversation:
        key = _key(p)
        conv = self._by_key.get(key)
        if conv is None or (p.flags & (SYN | ACK) == SYN and conv.ended):
            conv = self._new(p)
            self._by_key[key] = conv
        return conv

    def _new(self, p: Packet) -> Conversation:
        stream = self._streams[p.proto]
        self._streams[p.proto] = stream + 1
        src, dst = (p.src, p.sport), (p.dst, p.dport)
        if p.proto == IPPROTO_UDP:
            roles, client, server = ROLES_FIRST_SENDER, src, dst
        elif p.flags & (SYN | ACK) == SYN:
            roles, client, server = ROLES_FROM_SYN, src, dst
        elif p.flags & (SYN | ACK) == SYN | ACK:
            roles, client, server = ROLES_FROM_SYN, dst, src
        elif p.sport < p.dport:
            roles, client, server = ROLES_GUESSED, dst, src
        else:
            roles, client, server = ROLES_GUESSED, src, dst
        conv = Conversation(stream, p.proto, client, server, roles, p.ts_ns)
        self.conversations.append(conv)
        return conv

    def _tcp(self, p: Packet, conv: Conversation, from_client: bool,
             d: Direction, r: Direction) -> Annotated:
        flags = p.flags
        if flags & SYN:
            _see_syn(p, conv, d, r, from_client)
        if d.base < 0:
            d.base = p.seq if flags & SYN else (p.seq - 1) % MOD32
        if flags & ACK:
            if r.base < 0:
                r.base = (p.ack - 1) % MOD32
            ack = (p.ack - r.base) % MOD32
        else:
            ack = 0
        seq = (p.seq - d.base) % MOD32
        win = p.window
        if not flags & SYN and d.scale >= 0 and r.scale >= 0:
            win <<= d.scale
        phase = _phase(p, conv, from_client, d)
        return Annotated(self._count, p, conv, from_client, seq, ack, win, phase, p.notes)


def _see_syn(p: Packet, conv: Conversation, d: Direction, r: Direction,
             from_client: bool) -> None:
    d.syn = True
    d.scale = SCALE_NONE
    for opt in p.options:
        if opt.kind == TcpOptionKind.WSCALE and len(opt.value) == 1:
            d.scale = min(opt.value[0], 14)  # RFC 7323 2.3: larger shifts are treated as 14
    if r.syn and (d.scale == SCALE_NONE or r.scale == SCALE_NONE):
        d.scale = r.scale = SCALE_NONE
    if p.flags & ACK:
        if conv.synack_ts < 0:
            conv.synack_ts = p.ts_ns
    elif conv.syn_ts < 0:
        conv.syn_ts = p.ts_ns


def _phase(p: Packet, conv: Conversation, from_client: bool, d: Direction) -> str:
    flags = p.flags
    if flags & RST:
        conv.reset = True
        return "reset"
    if flags & SYN:
        return PHASE_HANDSHAKE[1] if flags & ACK else PHASE_HANDSHAKE[0]
    if flags & FIN:
        d.fin = True
        conv.closing = True
        return "teardown"
    if (not conv.handshake_done and from_client and conv.synack_ts >= 0
            and flags & ACK and p.payload_len == 0):
        conv.handshake_done = True
        conv.ack_ts = p.ts_ns
        return PHASE_HANDSHAKE[2]
    if p.payload_len > 0:
        conv.handshake_done = True
        return "data"
    return "teardown" if conv.closing else "ack"


def teardown_complete(a: Annotated) -> bool:
    """True once a TCP connection is fully closed on the wire: reset, or FIN both ways and
    the last FIN acknowledged. ``sockcap run`` stops capturing only after this."""
    conv = a.conv
    if conv is None or conv.proto != IPPROTO_TCP:
        return False
    if conv.reset:
        return True
    flags = a.packet.flags
    return conv.dirs[0].fin and conv.dirs[1].fin and bool(flags & ACK) and not flags & FIN
