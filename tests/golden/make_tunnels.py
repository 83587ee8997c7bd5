"""Write the tunnel and Simple Packet Block captures of tests/golden (run on purpose).

    python tests/golden/make_tunnels.py

- ``pppoe.pcap``: PPPoE discovery (PADI, PADO, PADR, PADS), LCP and IPCP in the session,
  a TCP conversation over IPv4 and a UDP exchange over IPv6 inside it, then PADT.
- ``l2tp.pcap``: L2TPv2 over UDP port 1701: control messages (SCCRQ, SCCRP, SCCCN, a ZLB
  acknowledgement, ICRQ), then data messages carrying PPP (LCP, then a TCP conversation
  over IPv4 and UDP over IPv6), with and without the length, Ns/Nr and offset fields and
  PPP's address/control bytes, so every optional field of RFC 2661 3.1 is met.
- ``spb.pcapng``: a loopback TCP echo in which some packets are Simple Packet Blocks
  (no timestamp): the first one, two in the middle and the last one.

The bytes are built with scapy (and struct for the L2TP and pcapng headers) from fixed
fields and fixed times, so the files are the same each run.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.ppp import PPP, PPP_IPCP, PPP_LCP_Configure, PPPoE, PPPoED
from scapy.packet import Packet, Raw
from scapy.utils import wrpcap

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000.0
CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
SESSION = 0x1234


def tcp_conversation(src: str, dst: str) -> list[Packet]:
    """A handshake, one request and reply, and a FIN teardown from the client."""
    c, s = 1000, 5000
    req, rep = b"GET / HTTP/1.0\r\n\r\n", b"HTTP/1.0 200 OK\r\n\r\nhello"
    a, b = IP(src=src, dst=dst, id=1), IP(src=dst, dst=src, id=2)
    return [
        a / TCP(sport=40000, dport=80, flags="S", seq=c, window=64240,
                options=[("MSS", 1452), ("WScale", 7)]),
        b / TCP(sport=80, dport=40000, flags="SA", seq=s, ack=c + 1, window=65160,
                options=[("MSS", 1452), ("WScale", 7)]),
        a / TCP(sport=40000, dport=80, flags="A", seq=c + 1, ack=s + 1, window=502),
        a / TCP(sport=40000, dport=80, flags="PA", seq=c + 1, ack=s + 1, window=502) / req,
        b / TCP(sport=80, dport=40000, flags="A", seq=s + 1, ack=c + 1 + len(req), window=509),
        b / TCP(sport=80, dport=40000, flags="PA", seq=s + 1, ack=c + 1 + len(req),
                window=509) / rep,
        a / TCP(sport=40000, dport=80, flags="FA", seq=c + 1 + len(req),
                ack=s + 1 + len(rep), window=502),
        b / TCP(sport=80, dport=40000, flags="FA", seq=s + 1 + len(rep),
                ack=c + 2 + len(req), window=509),
        a / TCP(sport=40000, dport=80, flags="A", seq=c + 2 + len(req),
                ack=s + 2 + len(rep), window=502),
    ]


def udp6_exchange(src: str, dst: str) -> list[Packet]:
    return [IPv6(src=src, dst=dst) / UDP(sport=40001, dport=7) / b"query",
            IPv6(src=dst, dst=src) / UDP(sport=7, dport=40001) / b"answer!"]


def timed(packets: list[Packet]) -> list[Packet]:
    for i, p in enumerate(packets):
        p.time = T0 + i * 0.001 + (i % 3) * 0.000123
    return packets


def from_client(ip: Packet) -> bool:
    return bool(ip[0].src in ("10.0.0.1", "2001:db8::1"))


# -- PPPoE -----------------------------------------------------------------------------

def pppoe_frames() -> list[Packet]:
    def eth(up: bool) -> Ether:
        return Ether(src=CLIENT_MAC if up else SERVER_MAC, dst=SERVER_MAC if up else CLIENT_MAC)

    def disc(code: int, up: bool, session: int = 0) -> Packet:
        return eth(up) / PPPoED(code=code, sessionid=session) / Raw(b"\x01\x01\x00\x00")

    def session(inner: Packet, up: bool) -> Packet:
        return eth(up) / PPPoE(sessionid=SESSION) / PPP() / inner

    frames = [disc(0x09, True), disc(0x07, False), disc(0x19, True), disc(0x65, False, SESSION),
              session(PPP_LCP_Configure(code=1, id=1), True),
              session(PPP_IPCP(code=1, id=1), True)]
    frames += [session(p, from_client(p)) for p in tcp_conversation("10.0.0.1", "10.0.0.2")]
    frames += [session(p, from_client(p)) for p in udp6_exchange("2001:db8::1", "2001:db8::2")]
    frames.append(disc(0xA7, True, SESSION))
    return timed(frames)


# -- L2TP ------------------------------------------------------------------------------

CTRL, LEN, SEQ, OFF = 0x8000, 0x4000, 0x0800, 0x0200  # RFC 2661 3.1 header bits
TUNNEL, L2TP_SESSION = 7, 9


def l2tp_header(bits: int, body: bytes, ns: int = 0, nr: int = 0, offset: bytes = b"") -> bytes:
    """An L2TPv2 header with the fields ``bits`` asks for, then ``body``."""
    session = 0 if bits & CTRL else L2TP_SESSION
    rest = struct.pack("!HH", TUNNEL, session)
    if bits & SEQ:
        rest += struct.pack("!HH", ns, nr)
    if bits & OFF:
        rest += struct.pack("!H", len(offset)) + offset
    if bits & LEN:
        length = 4 + len(rest) + len(body)
        return struct.pack("!HH", bits | 2, length) + rest + body
    return struct.pack("!H", bits | 2) + rest + body


def avp(attribute: int, value: bytes, mandatory: bool = True) -> bytes:
    return struct.pack("!HHH", (0x8000 if mandatory else 0) | (6 + len(value)), 0,
                       attribute) + value


def control(message: int, ns: int, nr: int, more: bytes = b"") -> bytes:
    body = avp(0, struct.pack("!H", message)) + more if message else b""
    return l2tp_header(CTRL | LEN | SEQ, body, ns, nr)


def l2tp_frames() -> list[Packet]:
    lac, lns = "192.0.2.1", "192.0.2.2"

    def udp(payload: bytes, up: bool) -> Packet:
        ip = IP(src=lac, dst=lns) if up else IP(src=lns, dst=lac)
        return (Ether(src=CLIENT_MAC if up else SERVER_MAC, dst=SERVER_MAC if up else CLIENT_MAC)
                / ip / UDP(sport=1701, dport=1701) / payload)

    host = avp(7, b"lac")
    frames = [udp(control(1, 0, 0, avp(2, b"\x01\x00") + host), True),  # SCCRQ
              udp(control(2, 0, 1, avp(2, b"\x01\x00") + avp(7, b"lns")), False),  # SCCRP
              udp(control(3, 1, 1), True),  # SCCCN
              udp(control(0, 1, 2), False),  # ZLB
              udp(control(10, 2, 1, avp(14, b"\x00\x09")), True)]  # ICRQ
    # Data messages: each variant of the optional fields, in turn.
    variants: list[Callable[[bytes, int], bytes]] = [
        lambda ppp, n: l2tp_header(0, b"\xff\x03" + ppp),
        lambda ppp, n: l2tp_header(LEN, ppp),
        lambda ppp, n: l2tp_header(SEQ, b"\xff\x03" + ppp, n, n),
        lambda ppp, n: l2tp_header(OFF, ppp, offset=b"\x00\x00\x00"),
        lambda ppp, n: l2tp_header(LEN | SEQ | OFF, b"\xff\x03" + ppp, n, n, b""),
    ]
    inner = [bytes(PPP() / PPP_LCP_Configure(code=1, id=1))]
    tcp = tcp_conversation("10.0.0.1", "10.0.0.2")
    six = udp6_exchange("2001:db8::1", "2001:db8::2")
    inner += [bytes(PPP() / p) for p in tcp + six]
    ups = [True] + [from_client(p) for p in tcp + six]
    for n, (ppp, up) in enumerate(zip(inner, ups, strict=True)):
        frames.append(udp(variants[n % len(variants)](ppp, n), up))
    frames.append(udp(control(14, 3, 2, avp(1, b"\x00\x01")), False))  # CDN
    return timed(frames)


# -- pcapng with Simple Packet Blocks --------------------------------------------------

def pcapng_block(btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def spb_pcapng(path: Path) -> None:
    """A loopback TCP echo (Ethernet, zero MACs) with Simple Packet Blocks among EPBs."""
    eth = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
    tcp = [eth / p for p in tcp_conversation("127.0.0.1", "127.0.0.1")]
    for p in tcp:  # a loopback echo: the same address both ways, distinct ports
        p[IP].src = p[IP].dst = "127.0.0.1"
    untimed = {0, 3, 5, len(tcp) - 1}
    out = pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += pcapng_block(1, struct.pack("<HHI", 1, 0, 0))  # Ethernet, no snap length
    ts = int(T0 * 1_000_000)
    for i, p in enumerate(tcp):
        data = bytes(p)
        if i in untimed:
            out += pcapng_block(3, struct.pack("<I", len(data)) + data)
        else:
            t = ts + i * 1000 + (i % 3) * 123
            out += pcapng_block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF,
                                               len(data), len(data)) + data)
    path.write_bytes(out)


def main() -> None:
    wrpcap(str(HERE / "pppoe.pcap"), pppoe_frames())
    wrpcap(str(HERE / "l2tp.pcap"), l2tp_frames())
    spb_pcapng(HERE / "spb.pcapng")
    for name in ("pppoe.pcap", "l2tp.pcap", "spb.pcapng"):
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
