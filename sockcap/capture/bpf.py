"""Classic BPF programs for the kernel socket filter, built without libpcap.

Only the filter ``sockcap run`` needs is assembled here: "TCP or UDP to or from PORT" on an
Ethernet-framed interface (Linux ``lo`` is one), for IPv4 (first fragments only, as
tcpdump's ``port N``) and IPv6 (no extension headers). :func:`port_filter` is the program
``tcpdump -d 'tcp port N or udp port N'`` prints; :func:`port_filter_with_icmp` also keeps
the ICMP/ICMPv6 "destination unreachable" errors whose quoted datagram has PORT (the
answer to a datagram sent where nothing listens), as :func:`icmp_quoting` says in
libpcap's syntax. Arbitrary filter expressions are compiled elsewhere (by libpcap
through tcpdump's ``-ddd``).

Programs are written with symbolic labels and assembled into ``(code, jt, jf, k)``
instructions; a label makes each jump's target readable instead of a hand-counted offset.
"""

from __future__ import annotations

from typing import NamedTuple

LD_H_ABS = 0x28
LD_B_ABS = 0x30
LDX_B_MSH = 0xB1
LD_H_IND = 0x48
LD_B_IND = 0x50
JEQ_K = 0x15
JSET_K = 0x45
RET_K = 0x06
SNAPLEN = 262144


class Insn(NamedTuple):
    code: int
    jt: int
    jf: int
    k: int


class Op(NamedTuple):
    """An instruction whose jumps name labels (``None``: the next instruction)."""

    code: int
    k: int
    jt: str | None = None
    jf: str | None = None


Line = Op | str  # a str is a label for the next instruction


def assemble(lines: list[Line]) -> list[Insn]:
    """Resolve labels to relative jump offsets."""
    labels: dict[str, int] = {}
    ops: list[Op] = []
    for line in lines:
        if isinstance(line, str):
            labels[line] = len(ops)
        else:
            ops.append(line)

    def offset(i: int, label: str | None) -> int:
        return 0 if label is None else labels[label] - i - 1

    return [Insn(op.code, offset(i, op.jt), offset(i, op.jf), op.k) for i, op in enumerate(ops)]


def _either_port(load: int, offset: int, port: int, *more: int) -> list[Line]:
    """Accept when the 16-bit field at ``offset`` or the one after it is ``port`` (or one
    of ``more``)."""
    ports = (port, *more)
    return [
        Op(load, offset),  # source port
        *(Op(JEQ_K, p, jt="accept") for p in ports),
        Op(load, offset + 2),  # destination port
        *(Op(JEQ_K, p, jt="accept") for p in ports[:-1]),
        Op(JEQ_K, ports[-1], jt="accept", jf="reject"),
    ]


def _ip4_ports_and_verdicts(port: int, *more: int) -> list[Line]:
    """The IPv4 transport ports (first fragments only), then the two verdicts."""
    return [
        "ip4_frag",
        Op(LD_H_ABS, 20),  # flags and fragment offset
        Op(JSET_K, 0x1FFF, jt="reject"),  # only first fragments carry ports
        Op(LDX_B_MSH, 14),  # X = 4 * IHL
        *_either_port(LD_H_IND, 14, port, *more),
        "accept",
        Op(RET_K, SNAPLEN),
        "reject",
        Op(RET_K, 0),
    ]


def port_filter(port: int, other: int = 0) -> list[Insn]:
    """``(tcp or udp) and port PORT`` over IPv4 or IPv6, for Ethernet framing; with
    ``other``: ``(tcp or udp) and (port PORT or port OTHER)``."""
    more = (other,) if other else ()
    return assemble([
        Op(LD_H_ABS, 12),  # ethertype
        Op(JEQ_K, 0x86DD, jf="ip4"),
        Op(LD_B_ABS, 20),  # IPv6 next header
        Op(JEQ_K, 6, jt="ip6_ports"),
        Op(JEQ_K, 17, jf="reject"),
        "ip6_ports",
        *_either_port(LD_H_ABS, 54, port, *more),
        "ip4",
        Op(JEQ_K, 0x0800, jf="reject"),
        Op(LD_B_ABS, 23),  # IPv4 protocol
        Op(JEQ_K, 6, jt="ip4_frag"),
        Op(JEQ_K, 17, jf="reject"),
        *_ip4_ports_and_verdicts(port, *more),
    ])


def icmp_quoting(port: int) -> str:
    """libpcap's words for "an ICMP or ICMPv6 destination unreachable quoting ``port``":
    the quoted header's ports are read at fixed offsets (a quoted IPv4 header of 20 bytes,
    an IPv6 one without extension headers, as the kernel sends them)."""
    return (f"(icmp and icmp[0] == 3 and (icmp[28:2] == {port} or icmp[30:2] == {port})) or "
            f"(ip6 and ip6[6] == 58 and ip6[40] == 1 and "
            f"(ip6[88:2] == {port} or ip6[90:2] == {port}))")


def port_filter_with_icmp(port: int) -> list[Insn]:
    """:func:`port_filter` or :func:`icmp_quoting`, for Ethernet framing."""
    return assemble([
        Op(LD_H_ABS, 12),  # ethertype
        Op(JEQ_K, 0x86DD, jf="ip4"),
        Op(LD_B_ABS, 20),  # IPv6 next header
        Op(JEQ_K, 6, jt="ip6_ports"),
        Op(JEQ_K, 17, jt="ip6_ports"),
        Op(JEQ_K, 58, jf="reject"),
        Op(LD_B_ABS, 54),  # ICMPv6 type
        Op(JEQ_K, 1, jf="reject"),  # destination unreachable
        # the quoted ports: 54 + 8 (ICMPv6) + 40 (quoted IPv6)
        *_either_port(LD_H_ABS, 102, port),
        "ip6_ports",
        *_either_port(LD_H_ABS, 54, port),
        "ip4",
        Op(JEQ_K, 0x0800, jf="reject"),
        Op(LD_B_ABS, 23),  # IPv4 protocol
        Op(JEQ_K, 6, jt="ip4_frag"),
        Op(JEQ_K, 17, jt="ip4_frag"),
        Op(JEQ_K, 1, jf="reject"),
        Op(LD_H_ABS, 20),  # flags and fragment offset
        Op(JSET_K, 0x1FFF, jt="reject"),
        Op(LDX_B_MSH, 14),  # X = 4 * IHL
        Op(LD_B_IND, 14),  # ICMP type
        Op(JEQ_K, 3, jf="reject"),  # destination unreachable
        # the quoted ports: 14 + 8 (ICMP) + 20 (quoted IPv4)
        *_either_port(LD_H_IND, 42, port),
        *_ip4_ports_and_verdicts(port),
    ])
