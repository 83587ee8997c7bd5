"""The traffic ``scripts/pgo.py`` trains the compiled engine on: what a socket course's
programs put on loopback, written as capture files without a network.

The engine is profiled on the captures its users read most: many short TCP echo
conversations to port 5001 on 127.0.0.1 (and some on ::1), with the options Linux puts
on loopback (MSS, SACK permitted, timestamps, window scale) and the partial checksums
``lo`` leaves in the TCP header (see ``sockcap/analysis/offload.py``); UDP echo
datagrams; now and then a bulk transfer of 64 KiB segments (``lo`` uses GSO), a refused
connection (SYN answered by RST), a server that closes first, and the segments that make
Wireshark's expert notes (a retransmission, a duplicate ACK, a zero window). The mix is
drawn from a seeded random generator, so every build trains on the same bytes. One file
is a classic pcap (microseconds), one a pcapng (nanoseconds), the two formats the reader
takes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

_IP4 = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ETH4 = bytes(12) + b"\x08\x00"
_ETH6 = bytes(12) + b"\x86\xdd"
LO4 = bytes([127, 0, 0, 1])
LO6 = bytes(15) + b"\x01"
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
SERVER_PORT = 5001
WORDS = (b"halo", b"hello", b"apa kabar", b"selamat pagi", b"echo", b"test 123",
         b"socket programming", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", b"quit")


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return _fold(sum(struct.unpack(f"!{len(data) // 2}H", data)))


class Conversation:
    """One TCP connection's segments as Linux writes them on loopback: sequence numbers,
    acknowledgements, timestamps and window kept per side."""

    def __init__(self, rng: random.Random, port: int, v6: bool) -> None:
        self.rng, self.port, self.v6 = rng, port, v6
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]  # client, server
        self.ts = [rng.getrandbits(32), rng.getrandbits(32)]
        self.win = [64, 64]

    def segment(self, side: int, flags: int, data: bytes = b"", *, advance: bool = True,
                win: int | None = None) -> bytes:
        """The frame ``side`` (0 client, 1 server) sends; ``advance`` moves its sequence
        number past the data (and SYN/FIN), as a first sending does."""
        other = 1 - side
        ports = (self.port, SERVER_PORT) if side == 0 else (SERVER_PORT, self.port)
        self.ts[side] = (self.ts[side] + 1) & 0xFFFFFFFF
        if flags & SYN:
            options = (b"\x02\x04" + (65476 if self.v6 else 65495).to_bytes(2, "big")
                       + b"\x04\x02\x08\x0a" + struct.pack("!II", self.ts[side], 0 if side == 0
                                                           else self.ts[other]) + b"\x01\x03\x03\x07")
            window = 65483 if side else 65495
        else:
            options = b"\x01\x01\x08\x0a" + struct.pack("!II", self.ts[side], self.ts[other])
            window = self.win[side] if win is None else win
        ack = self.seq[other] if flags & ACK else 0
        tcp = _TCP.pack(*ports, self.seq[side], ack, (20 + len(options)) << 2, flags,
                        window, 0, 0) + options
        if advance:
            self.seq[side] = (self.seq[side] + len(data) + (1 if flags & (SYN | FIN) else 0)) \
                & 0xFFFFFFFF
        return _ip(tcp, data, self.v6, 6)


def _ip(transport: bytes, data: bytes, v6: bool, proto: int) -> bytes:
    """Ethernet (``lo``'s zero addresses) and IP around a TCP or UDP header: the TCP
    checksum field holds the pseudo-header's sum, as ``lo`` leaves it."""
    length = len(transport) + len(data)
    addresses = LO6 + LO6 if v6 else LO4 + LO4
    if proto == 6:
        partial = _fold(_sum16(addresses) + proto + length)
        transport = transport[:16] + partial.to_bytes(2, "big") + transport[18:]
    if v6:
        return _ETH6 + _IP6.pack(6 << 28, length, proto, 64, LO6, LO6) + transport + data
    header = _IP4.pack(0x45, 0, 20 + length, 0, 0x4000, 64, proto, 0, LO4, LO4)
    checksum = ~_sum16(header) & 0xFFFF
    return _ETH4 + header[:10] + checksum.to_bytes(2, "big") + header[12:] + transport + data


def _echo(rng: random.Random, c: Conversation) -> Iterator[bytes]:
    """Handshake, 1-6 messages echoed, the close (by either side), with now and then
    a retransmission, a duplicate ACK or a zero window."""
    yield c.segment(0, SYN)
    yield c.segment(1, SYN | ACK)
    yield c.segment(0, ACK)
    for _ in range(rng.randint(1, 6)):
        text = rng.choice(WORDS) * rng.choice((1, 1, 1, 2, 5, 40))
        yield c.segment(0, PSH | ACK, text)
        odd = rng.random()
        if odd < 0.01:  # the same bytes again: a retransmission
            c.seq[0] = (c.seq[0] - len(text)) & 0xFFFFFFFF
            yield c.segment(0, PSH | ACK, text)
        yield c.segment(1, ACK)
        if 0.01 <= odd < 0.02:
            yield c.segment(1, ACK)  # a duplicate ACK
        if 0.02 <= odd < 0.025:
            yield c.segment(1, ACK, win=0)  # the server's window full
            yield c.segment(1, ACK)
        yield c.segment(1, PSH | ACK, text)
        yield c.segment(0, ACK)
    first = 1 if rng.random() < 0.2 else 0  # a server that closes first
    yield c.segment(first, FIN | ACK)
    yield c.segment(1 - first, FIN | ACK)
    yield c.segment(first, ACK)


def _bulk(c: Conversation, segments: int) -> Iterator[bytes]:
    """A 64 KiB-segment transfer from the client (GSO on ``lo``), acknowledged every
    second segment, then an abort by RST."""
    body = bytes(range(256)) * 255
    yield c.segment(0, SYN)
    yield c.segment(1, SYN | ACK)
    yield c.segment(0, ACK)
    for i in range(segments):
        yield c.segment(0, ACK if i % 3 else PSH | ACK, body)
        if i % 2:
            yield c.segment(1, ACK)
    yield c.segment(0, RST | ACK)


def _udp(rng: random.Random, port: int, v6: bool) -> Iterator[bytes]:
    """A UDP echo: the datagram and its echo."""
    text = rng.choice(WORDS)
    for ports in ((port, SERVER_PORT), (SERVER_PORT, port)):
        yield _ip(_UDP.pack(*ports, 8 + len(text), 0), text, v6, 17)


def frames(count: int, seed: int) -> Iterator[bytes]:
    """About ``count`` frames of the course's loopback traffic."""
    rng = random.Random(seed)
    made, port = 0, 32768
    while made < count:
        port = 32768 + (port - 32768 + rng.randint(2, 14)) % 28000
        v6 = rng.random() < 0.1
        pick = rng.random()
        if pick < 0.0005:
            batch = _bulk(Conversation(rng, port, v6), rng.randint(4, 40))
        elif pick < 0.01:  # refused: nothing listens on the port
            c = Conversation(rng, port, v6)
            batch = iter((c.segment(0, SYN), c.segment(1, RST | ACK)))
        elif pick < 0.3:
            batch = _udp(rng, port, v6)
        else:
            batch = _echo(rng, Conversation(rng, port, v6))
        for frame in batch:
            made += 1
            yield frame


def write_pcap(path: Path, count: int, seed: int) -> None:
    """A classic pcap (microseconds, Ethernet) of :func:`frames`."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, frame in enumerate(frames(count, seed)):
            sec, usec = divmod(1_765_000_000_000_000 + i * 7, 1_000_000)
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)


def _block(kind: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def write_pcapng(path: Path, count: int, seed: int) -> None:
    """A pcapng (one Ethernet interface, nanoseconds: ``if_tsresol`` 9) of :func:`frames`."""
    with open(path, "wb") as f:
        f.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        tsresol = struct.pack("<HHB", 9, 1, 9) + bytes(3) + bytes(4)  # option, end of options
        f.write(_block(1, struct.pack("<HHI", 1, 0, 262144) + tsresol))
        for i, frame in enumerate(frames(count, seed)):
            ns = 1_765_000_000_000_000_000 + i * 6_993
            f.write(_block(6, struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, len(frame),
                                          len(frame)) + frame))
