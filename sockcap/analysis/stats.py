"""Statistics of a capture: its conversations, protocol totals and the file's own facts.

Pure: :class:`StatsCollector` counts the packets outside conversations and reads the
conversations the :class:`~sockcap.analysis.conversation.ConversationTracker`
already keeps, so ``sockcap stats`` costs one pass and memory per conversation, not per
packet. The report is plain data (:class:`StatsReport`); renderers turn it into a table
or JSON, and ``sockcap run --capture`` into its one-line summary.

Wireshark's words: a conversation is a ``tcp.stream`` / ``udp.stream``; the handshake RTT
is ``tcp.analysis.initial_rtt`` (iRTT); "how it ended" is read from the flags seen:
refused (RST answering the SYN), reset (any other RST), the SYN never answered (nothing
came back from the server), FIN both ways, half-closed (FIN one way only) or still open.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple compiles
# each field's annotation string into a ForwardRef at import (~99 fields on the path
# of `sockcap show`: a few ms of every start, bench/startup_bench.py).

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from sockcap.analysis.conversation import Conversation
from sockcap.codes import Note, Outcome, Roles
from sockcap.decode.icmp import decode_icmp
from sockcap.decode.records import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, LINKTYPE_NAMES, Packet

PROTOCOL_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 50: "ESP",
                  51: "AH", 58: "ICMPv6", 89: "OSPF", 132: "SCTP"}


class ConversationStats(NamedTuple):
    """One row of the conversations table."""

    proto: str  # "TCP" or "UDP"
    stream: int  # tcp.stream / udp.stream
    client: tuple[str, int]
    server: tuple[str, int]
    roles: Roles  # how the roles were found: "syn", "ports" (guessed), "first sender"
    packets: tuple[int, int]  # client -> server, server -> client
    bytes: tuple[int, int]  # frame bytes each way
    payload: tuple[int, int]  # TCP/UDP payload bytes each way
    start_ns: int  # -1 when no packet of it had a time (pcapng Simple Packet Blocks)
    duration_ns: int  # -1 likewise
    irtt_ns: int  # -1 when the handshake was not seen
    notes: Mapping[Note, int]  # expert note kind -> count
    ended: Outcome  # TCP: refused, reset, FIN both ways, half-closed, still open, SYN unanswered; UDP: NONE


class CaptureFacts(NamedTuple):
    """What the file itself says (filled by the caller from the reader)."""

    format: str  # "pcap", "pcapng", or "live"
    linktypes: tuple[str, ...]
    warnings: tuple[str, ...]  # reader warnings (damaged or odd records)
    skipped: Mapping[str, int]  # reader events by kind


class StatsReport(NamedTuple):
    facts: CaptureFacts
    packets: int
    first_ns: int  # -1 without packets
    last_ns: int
    protocols: Mapping[str, tuple[int, int]]  # name -> (packets, frame bytes)
    conversations: Sequence[ConversationStats]
    notes: Mapping[Note, int]  # expert note kind -> count, whole capture
    # ICMP/ICMPv6 messages by Wireshark's name ("ICMP Destination unreachable (Port
    # unreachable)") -> count, most frequent first
    icmp: Mapping[str, int] = {}


class StatsCollector:
    """Counts packets per protocol and the capture's time span.

    The packets of TCP and UDP conversations are not counted here: the conversations
    already count them, per direction (:class:`~sockcap.analysis.conversation.Direction`),
    and :meth:`report` adds those up. Per packet that leaves the time span (two
    comparisons, done inline by the caller through :meth:`see`) and, for the other
    packets only (ARP, ICMP, cut headers...), one dict update keyed by ``(net, proto)``,
    the names looked up once per pair at :meth:`report`. Counting every packet here as
    well cost 0.86 µs a packet, an eighth of ``sockcap stats`` (bench/stage_costs.py).
    """

    def __init__(self) -> None:
        self.packets = 0
        self.first_ns = -1
        self.last_ns = -1
        self._counts: dict[tuple[str, int], list[int]] = {}  # (net, proto) -> packets, bytes
        self._icmp: dict[str, int] = {}  # ICMP message name -> count

    def see(self, packets: int, first_ns: int, last_ns: int) -> None:
        """The number of packets read and their time span, once the caller is done."""
        self.packets, self.first_ns, self.last_ns = packets, first_ns, last_ns

    def count(self, p: Packet) -> None:
        """Count one packet that belongs to no TCP or UDP conversation."""
        counts = self._counts.get((p.net, p.proto))
        if counts is None:
            counts = self._counts[(p.net, p.proto)] = [0, 0]
        counts[0] += 1
        counts[1] += p.wirelen
        if p.proto == IPPROTO_ICMP or p.proto == IPPROTO_ICMPV6:
            msg = decode_icmp(p)
            if msg is not None:
                name = f"{PROTOCOL_NAMES[p.proto]} {msg.name}"
                self._icmp[name] = self._icmp.get(name, 0) + 1

    def protocols(self, rows: Sequence[ConversationStats]) -> dict[str, list[int]]:
        """Protocol name -> [packets, frame bytes]: the conversations' and the others'
        (the report orders them by packets, then by name)."""
        out: dict[str, list[int]] = {}
        for c in rows:
            total = out.setdefault(c.proto, [0, 0])
            total[0] += c.packets[0] + c.packets[1]
            total[1] += c.bytes[0] + c.bytes[1]
        for (net, proto), (packets, size) in self._counts.items():
            total = out.setdefault(protocol_name(net, proto), [0, 0])
            total[0] += packets
            total[1] += size
        return out

    def report(self, convs: Sequence[Conversation], facts: CaptureFacts,
               notes: Mapping[Note, int]) -> StatsReport:
        rows = [conversation_stats(c) for c in sorted(convs, key=lambda c: (c.proto, c.stream))]
        return self.report_rows(rows, facts, notes)

    def report_rows(self, rows: Sequence[ConversationStats], facts: CaptureFacts,
                    notes: Mapping[Note, int]) -> StatsReport:
        """The report from rows already made (TCP then UDP, each by stream): the
        engine makes them (sockcap.pipeline.engine.Rows)."""
        protos = {k: (v[0], v[1]) for k, v in sorted(self.protocols(rows).items(),
                                                     key=lambda kv: (-kv[1][0], kv[0]))}
        icmp = dict(sorted(self._icmp.items(), key=lambda kv: (-kv[1], kv[0])))
        return StatsReport(facts, self.packets, self.first_ns, self.last_ns, protos, rows,
                           dict(notes), icmp)


def protocol_name(net: str, proto: int) -> str:
    """``TCP``, ``UDP``, ``ICMPv6``, ``IP proto 99``, ``ARP``... for the totals table."""
    if proto >= 0:
        return PROTOCOL_NAMES.get(proto, f"IP proto {proto}")
    return net or "other"


def conversation_stats(c: Conversation) -> ConversationStats:
    up, down = c.dirs
    return ConversationStats(
        "TCP" if c.proto == IPPROTO_TCP else "UDP", c.stream, c.client, c.server, c.roles,
        (up.packets, down.packets), (up.bytes, down.bytes),
        (up.payload_bytes, down.payload_bytes), c.first_ts,
        c.last_ts - c.first_ts if c.first_ts >= 0 else -1,
        c.irtt_ns if c.proto == IPPROTO_TCP else -1, dict(c.note_counts or {}), c.end_state)


def linktype_names(linktypes: Mapping[int, int]) -> tuple[str, ...]:
    """Distinct link-type names of a reader's interfaces, in interface order."""
    names: list[str] = []
    for lt in linktypes.values():
        name = LINKTYPE_NAMES.get(lt, f"LINKTYPE {lt}")
        if name not in names:
            names.append(name)
    return tuple(names)
