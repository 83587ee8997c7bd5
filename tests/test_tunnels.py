"""PPPoE, PPP and L2TPv2 decoding, and frames without a timestamp (pcapng SPB).

tshark is the oracle for the tunnel captures of tests/golden (written by
tests/golden/make_tunnels.py): the inner conversation's addresses, ports, relative
sequence numbers, flags and stream numbers, and the names of the other lines.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest
from conftest import sockcap, tshark_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import CookedLinux, Ether
from scapy.layers.ppp import PPP, PPPoE
from test_decode import LAYERS, check_invariants, decode_or_error

from sockcap.analysis.conversation import ConversationTracker
from sockcap.decode import RawFrame, decode_frame
from sockcap.decode.records import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_RAW,
    NO_TIMESTAMP,
    TUNNEL_L2TP,
    TUNNEL_PPPOE,
    Packet,
)
from sockcap.decode.tunnel import NOTE_L2TP_LEN, NOTE_PPPOE_LEN
from sockcap.pcapfile.pcap import pack_record
from sockcap.render.timeline import Timeline, json_record

GOLDEN = Path(__file__).resolve().parent / "golden"
MAC = "02:00:00:00:00:01"  # given: scapy would otherwise look for a route to fill it in
PPPOE_HEAD = bytes(12) + b"\x88\x64" + b"\x11\x00\x12\x34"  # Ethernet, PPPoE up to length
INNER_TCP = IP(src="10.1.1.1", dst="10.2.2.2", id=7, ttl=9) / TCP(
    sport=1234, dport=80, seq=11, ack=22, flags="PA", window=333,
    options=[("NOP", None), ("NOP", None), ("Timestamp", (1, 2))]) / b"hello"
SAME_FIELDS = ("net", "src", "dst", "proto", "sport", "dport", "seq", "ack", "flags",
               "window", "options", "payload_len", "truncated", "notes", "ip_id", "ttl",
               "fragment", "payload")


def l2tp(bits: int, body: bytes, *, length: bool = False, ns: bool = False,
         offset: bytes | None = None) -> bytes:
    """An L2TPv2 header by hand (RFC 2661 3.1), then ``body``."""
    rest = struct.pack("!HH", 1, 2) + (struct.pack("!HH", 3, 4) if ns else b"")
    if offset is not None:
        rest += struct.pack("!H", len(offset)) + offset
    bits |= 2 | (0x4000 if length else 0) | (0x0800 if ns else 0) | (0x0200 if offset is not None else 0)
    if length:
        return struct.pack("!HH", bits, 4 + len(rest) + len(body)) + rest + body
    return struct.pack("!H", bits) + rest + body


def over_udp(payload: bytes, six: bool = False, port: int = 1701) -> bytes:
    net = IPv6(src="2001:db8::a", dst="2001:db8::b") if six else IP(src="192.0.2.1", dst="192.0.2.2")
    return bytes(Ether(src=MAC, dst=MAC) / net / UDP(sport=port, dport=1701) / payload)


def decode(data: bytes, linktype: int = LINKTYPE_ETHERNET) -> Packet:
    p = decode_frame(RawFrame(5, linktype, data, len(data)))
    check_invariants(p)
    return p


def assert_inner(p: Packet, tunnel: str, inner: bytes = bytes(INNER_TCP)) -> None:
    """``p`` has the fields of ``inner`` decoded on its own, and says which tunnel."""
    alone = decode(inner, LINKTYPE_RAW)
    assert p.tunnel == tunnel
    for name in SAME_FIELDS:
        assert getattr(p, name) == getattr(alone, name), name


# -- PPPoE -----------------------------------------------------------------------------

@pytest.mark.parametrize("six", [False, True])
def test_pppoe_session_carries_ip(six: bool) -> None:
    inner = bytes(IPv6(src="::1", dst="::2") / UDP(sport=9, dport=10) / b"x") if six else bytes(INNER_TCP)
    frame = bytes(Ether(src=MAC, dst=MAC) / PPPoE(sessionid=5) / PPP(proto=0x57 if six else 0x21) / inner)
    assert_inner(decode(frame), TUNNEL_PPPOE, inner)
    sll = bytes(CookedLinux(proto=0x8864) / PPPoE(sessionid=5) / PPP(proto=0x57 if six else 0x21) / inner)
    assert_inner(decode(sll, LINKTYPE_LINUX_SLL), TUNNEL_PPPOE, inner)


def test_ppp_protocol_field_compression() -> None:
    frame = PPPOE_HEAD + struct.pack("!H", len(INNER_TCP) + 1) + b"\x21" + bytes(INNER_TCP)
    assert_inner(decode(frame), TUNNEL_PPPOE)


@pytest.mark.parametrize(("proto", "name"), [(0xC021, "PPP LCP"), (0x8021, "PPP IPCP"),
                                             (0x8057, "PPP IPV6CP"), (0xC223, "PPP CHAP"),
                                             (0x1235, "PPP 0x1235")])
def test_other_ppp_protocols_are_named(proto: int, name: str) -> None:
    p = decode(PPPOE_HEAD + b"\x00\x06" + struct.pack("!H", proto) + b"\x01\x01\x00\x04")
    assert (p.net, p.tunnel, p.src, p.proto, p.sport) == (name, TUNNEL_PPPOE, "", -1, -1)
    assert (p.payload_off, p.payload) == (22, b"\x01\x01\x00\x04")


@pytest.mark.parametrize(("code", "name"), [(0x09, "PADI"), (0x07, "PADO"), (0x19, "PADR"),
                                            (0x65, "PADS"), (0xA7, "PADT"), (0x42, "0x42")])
def test_pppoe_discovery_is_named(code: int, name: str) -> None:
    p = decode(bytes(12) + b"\x88\x63\x11" + bytes([code]) + bytes(4))
    assert (p.net, p.tunnel, p.truncated) == (f"PPPoED {name}", "", "")


def test_pppoe_cuts_and_damage() -> None:
    assert (decode(PPPOE_HEAD[:17]).net, decode(PPPOE_HEAD[:17]).truncated) == ("PPPoE", "pppoe")
    assert decode(PPPOE_HEAD + b"\x00\x08").truncated == "ppp"
    assert decode(PPPOE_HEAD + b"\x00\x08\x00").truncated == "ppp"
    assert decode(bytes(12) + b"\x88\x63\x11").truncated == "pppoed"
    long = decode(PPPOE_HEAD + b"\x05\xdc\xc0\x21" + bytes(4))
    assert (long.net, long.notes) == ("PPP LCP", (NOTE_PPPOE_LEN,))


# -- L2TP ------------------------------------------------------------------------------

HEADERS = [dict(), dict(length=True), dict(ns=True), dict(offset=b"\x00\x00"),
           dict(length=True, ns=True, offset=b"")]


@pytest.mark.parametrize("fields", HEADERS)
@pytest.mark.parametrize("hdlc", [b"", b"\xff\x03"])
@pytest.mark.parametrize("six", [False, True])
def test_l2tp_data_carries_ip(fields: dict[str, object], hdlc: bytes, six: bool) -> None:
    body = hdlc + b"\x00\x21" + bytes(INNER_TCP)
    assert_inner(decode(over_udp(l2tp(0, body, **fields), six)), TUNNEL_L2TP)  # type: ignore[arg-type]


def test_l2tp_carrying_lcp_keeps_the_outer_addresses() -> None:
    p = decode(over_udp(l2tp(0, b"\xff\x03\xc0\x21\x01\x01\x00\x04")))
    assert (p.net, p.src, p.dst, p.proto, p.sport, p.tunnel) == (
        "PPP LCP", "192.0.2.1", "192.0.2.2", -1, -1, TUNNEL_L2TP)


@pytest.mark.parametrize(("body", "name"), [
    (struct.pack("!HHHH", 0x8008, 0, 0, 1), "L2TP SCCRQ"),
    (struct.pack("!HHHH", 0x8008, 0, 0, 14), "L2TP CDN"),
    (struct.pack("!HHHH", 0x8008, 0, 0, 99), "L2TP control 99"),
    (struct.pack("!HHHH", 0xC008, 0, 0, 1), "L2TP control"),  # hidden
    (b"", "L2TP ZLB"),
])
def test_l2tp_control_messages_are_named(body: bytes, name: str) -> None:
    p = decode(over_udp(l2tp(0x8000, body, length=True, ns=True)))
    assert (p.net, p.src, p.proto, p.sport, p.tunnel) == (name, "192.0.2.1", -1, -1, "")


def test_not_l2tp_version_2_stays_udp() -> None:
    p = decode(over_udp(b"\x00\x03" + bytes(20)))  # L2TPv3
    assert (p.net, p.proto, p.sport, p.dport, p.tunnel) == ("IPv4", 17, 1701, 1701, "")


def test_l2tp_cuts_and_damage() -> None:
    frame = over_udp(l2tp(0, b"\x00\x21" + bytes(INNER_TCP), ns=True))
    head = 14 + 20 + 8
    assert decode(frame[: head + 6]).truncated == "l2tp"
    assert decode(frame[: head + 10]).truncated == "ppp"
    bad = decode(over_udp(struct.pack("!HH", 0x4002, 200) + bytes(8)))
    assert (bad.net, bad.notes) == ("L2TP", (NOTE_L2TP_LEN,))


@pytest.mark.parametrize("offset", [None, b"", b"\x00\x00"])
def test_l2tp_inside_pppoe_is_decoded(offset: bytes | None) -> None:
    """A DSL line (PPPoE) carrying an L2TP tunnel, with and without the offset field: the
    IP packet inside, as tshark shows it."""
    l2tp_ip = IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1701, dport=1701) / l2tp(
        0, b"\xff\x03\x00\x21" + bytes(INNER_TCP), offset=offset)
    p = decode(bytes(Ether(src=MAC, dst=MAC) / PPPoE() / PPP(proto=0x21) / l2tp_ip))
    assert_inner(p, TUNNEL_L2TP)


def test_l2tp_inside_l2tp_stays_udp() -> None:
    """The decoder does not recurse: L2TP carried by L2TP is the inner tunnel's UDP."""
    inner = IP(src="192.0.2.3", dst="192.0.2.4") / UDP(sport=1701, dport=1701) / l2tp(
        0, b"\x00\x21" + bytes(INNER_TCP))
    p = decode(over_udp(l2tp(0, b"\x00\x21" + bytes(inner))))
    assert (p.tunnel, p.proto, p.dport, p.src) == (TUNNEL_L2TP, 17, 1701, "192.0.2.3")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_l2tp_with_offset_inside_pppoe_agrees_with_tshark(tmp_path: Path) -> None:
    """PPPoE, IPv4, UDP 1701, L2TPv2 with the O bit, PPP: an ICMPv6 Router Advertisement
    and an LCP Echo Request, on both paths."""
    from scapy.layers.inet6 import ICMPv6ND_RA
    from scapy.utils import wrpcap

    ra = bytes(IPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA())
    echo = bytes.fromhex("0901000812345678")
    frames = [Ether(src=MAC, dst=MAC) / PPPoE(sessionid=1) / PPP(proto=0x21)
              / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1701, dport=1701)
              / l2tp(0, ppp, offset=pad)
              for pad in (b"", b"\x00\x00") for ppp in (b"\xff\x03\x00\x57" + ra,
                                                          b"\xff\x03\xc0\x21" + echo)]
    path = tmp_path / "pppoe-l2tp.pcap"
    wrpcap(str(path), frames)
    theirs = tshark_fields(path, "ip.src", "ipv6.src", "_ws.col.Protocol",
                           extra=("-E", "occurrence=l"))
    for env in ({"SOCKCAP_PURE": "1"}, {"SOCKCAP_PURE": None}):
        ours = [json.loads(line) for line in
                sockcap("show", "--json", str(path), env=env).stdout.splitlines()]
        assert [[r["src"] if "." in r["src"] else "", r["src"] if ":" in r["src"] else "",
                 r["proto"]] for r in ours] == [
            [ip4 if not ip6 else "", ip6, proto] for ip4, ip6, proto in theirs]
        assert [r["tunnel"] for r in ours] == ["l2tp"] * 4


# -- properties ------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([b"", b"\x00\x21", b"\x00\x57", b"\x21", b"\xc0\x21"]),
       st.binary(max_size=100), st.integers(0, 400))
def test_any_bytes_after_a_pppoe_header(ppp: bytes, rest: bytes, wirelen: int) -> None:
    data = PPPOE_HEAD + struct.pack("!H", len(ppp) + len(rest)) + ppp + rest
    decode_or_error(RawFrame(0, LINKTYPE_ETHERNET, data, wirelen))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 0xFFFF), st.sampled_from([b"", b"\x00\x21", b"\xff\x03\x00\x57"]),
       st.binary(max_size=100), st.booleans(), st.integers(0, 400))
def test_any_bytes_after_an_l2tp_header(bits: int, ppp: bytes, rest: bytes, six: bool,
                                        wirelen: int) -> None:
    data = over_udp(struct.pack("!H", bits & ~0xF | 2) + ppp + rest, six)
    decode_or_error(RawFrame(0, LINKTYPE_ETHERNET, data, wirelen))
    decode_or_error(RawFrame(0, LINKTYPE_ETHERNET, data, len(data)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["pppoe", *range(len(HEADERS))]))
def test_every_cut_of_a_tunnelled_frame(kind: object) -> None:
    if kind == "pppoe":
        frame = bytes(Ether(src=MAC, dst=MAC) / PPPoE() / PPP(proto=0x21) / INNER_TCP)
    else:
        frame = over_udp(l2tp(0, b"\xff\x03\x00\x21" + bytes(INNER_TCP), **HEADERS[int(kind)]))  # type: ignore[arg-type, call-overload]
    full = decode_frame(RawFrame(0, LINKTYPE_ETHERNET, frame, len(frame)))
    assert full.truncated == "" and full.tunnel and full.proto == 6
    for cut in range(len(frame)):
        part = decode_frame(RawFrame(0, LINKTYPE_ETHERNET, frame[:cut], len(frame)))
        check_invariants(part)
        if cut >= full.payload_off:  # only payload is missing
            assert part._replace(data=frame) == full, cut
        else:  # cut in a header: it says where, or the datagram stays the outer UDP one
            assert part.truncated in LAYERS or (part.tunnel, part.dport) == ("", 1701), cut


# -- tshark as the oracle --------------------------------------------------------------

ORACLE_FIELDS = ("ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
                 "udp.srcport", "udp.dstport", "tcp.seq", "tcp.ack", "tcp.flags", "tcp.stream",
                 "_ws.col.Protocol", "_ws.col.Info")


def our_row(rec: dict[str, object]) -> list[str]:
    """A ``sockcap show --json`` record as tshark's last occurrence of each field."""
    src, dst = str(rec["src"] or ""), str(rec["dst"] or "")
    six = ":" in src
    tcp, udp = rec["proto"] == "TCP", rec["proto"] == "UDP"
    flags = sum(1 << ("FIN", "SYN", "RST", "PSH", "ACK").index(f)
                for f in rec["flags"])  # type: ignore[attr-defined]
    return ["" if six else src, "" if six else dst, src if six else "", dst if six else "",
            str(rec["sport"]) if tcp else "", str(rec["dport"]) if tcp else "",
            str(rec["sport"]) if udp else "", str(rec["dport"]) if udp else "",
            str(rec["seq"]) if tcp else "", str(rec["ack"]) if tcp else "",
            f"0x{flags:04x}" if tcp else "", str(rec["stream"]) if tcp else ""]


@pytest.mark.tshark
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", ["pppoe.pcap", "l2tp.pcap"])
def test_tunnels_agree_with_tshark(name: str) -> None:
    path = GOLDEN / name
    theirs = tshark_fields(path, *ORACLE_FIELDS, extra=("-E", "occurrence=l"))
    res = sockcap("show", "--json", str(path))
    assert res.returncode == 0, res.stderr
    ours = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(ours) == len(theirs) > 10
    tunnelled = 0
    for rec, row in zip(ours, theirs, strict=True):
        protocol, info = row[-2], row[-1]
        if rec["proto"] in ("TCP", "UDP"):
            tunnelled += 1
            assert rec["tunnel"] == name.removesuffix(".pcap"), rec["no"]
            if name == "l2tp.pcap":  # the outer IPv4 and UDP headers' fields: L2TP's own
                if rec["proto"] == "TCP":
                    row[6:8] = ["", ""]
                if ":" in str(rec["src"]):
                    row[0:2] = ["", ""]
            assert our_row(rec) == row[:12], rec["no"]
        else:  # a named line: tshark's Protocol column, and its Info for the message
            kind, _, message = str(rec["proto"]).partition(" ")
            assert rec["tunnel"] in (None, "pppoe", "l2tp")
            if kind == "PPP":
                assert protocol == rec["proto"], rec["no"]
            else:
                assert (kind, message in info) == (protocol, True), (rec["no"], info)
    assert tunnelled == 11


# -- frames without a timestamp ---------------------------------------------------------

def annotated(times: list[int]) -> list[tuple[object, ...]]:
    """A TCP handshake and data on loopback, with these capture times."""
    a = IP(src="127.0.0.1", dst="127.0.0.1")
    segments = [TCP(sport=5, dport=6, flags="S", seq=0), TCP(sport=6, dport=5, flags="SA", seq=9, ack=1),
                TCP(sport=5, dport=6, flags="A", seq=1, ack=10),
                TCP(sport=5, dport=6, flags="PA", seq=1, ack=10) / b"hi",
                TCP(sport=5, dport=6, flags="PA", seq=1, ack=10) / b"hi"]
    tracker = ConversationTracker()
    return [tracker.feed(decode_frame(RawFrame(t, LINKTYPE_ETHERNET, bytes(Ether(src=MAC, dst=MAC) / a / s), 60)))
            for t, s in zip(times, segments, strict=True)]


def test_untimed_frames_show_no_time_and_keep_the_clock() -> None:
    times = [NO_TIMESTAMP, 2_000_000_000, NO_TIMESTAMP, 2_000_500_000, 2_001_000_000]
    rows = annotated(times)
    timeline = Timeline()
    lines = [timeline.line(a) for a in rows]  # type: ignore[arg-type]
    assert [line[5:15] for line in lines] == ["         -", "  0.000000", "         -",
                                              "  0.000500", "  0.001000"]
    assert all(line[15:18] in ("  c", "  s") for line in lines)  # the same width
    recs = [json_record(a, timeline.first_ts) for a in rows]  # type: ignore[arg-type]
    assert [(r["time"], r["ts"]) for r in recs] == [(None, None), (0.0, 2.0), (None, None),
                                                    (0.0005, 2.0005), (0.001, 2.001)]
    conv = rows[0][2]
    assert (conv.first_ts, conv.last_ts) == (2_000_000_000, 2_001_000_000)  # type: ignore[attr-defined]
    assert conv.irtt_ns == -1  # type: ignore[attr-defined]  # the SYN had no time
    assert rows[4][8] == ("retransmission",)  # timing unknown: a plain retransmission
    tcpdump = Timeline(style="tcpdump")
    assert tcpdump.lines(rows[0])[0].startswith("-               IP 127.0.0.1.5 > ")  # type: ignore[arg-type]


def test_pcap_writer_stores_an_untimed_frame_at_zero() -> None:
    assert pack_record(NO_TIMESTAMP, b"ab", 2)[:8] == bytes(8)
    with pytest.raises(ValueError, match="does not fit"):
        pack_record(-5_000_000_000, b"ab", 2)


def test_stats_of_untimed_conversations() -> None:
    res = sockcap("stats", "--json", str(GOLDEN / "spb.pcapng"))
    report = json.loads(res.stdout)
    assert (report["first_time"], report["last_time"]) == (1700000000.0011232, 1700000000.007123)
    conv = report["conversations"][0]
    assert (conv["start"], conv["duration"], conv["irtt"]) == (1700000000.0011232, 0.006, None)
