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

import struct
from collections.abc import Iterable, Mapping, Sequence

from sockcap._typing import NamedTuple
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


_ROLES = tuple(Roles)
_OUTCOMES = tuple(Outcome)
# filled, roles, ended, odd; client port, server port; client, server (address numbers);
# packets, bytes, payload (each way); start, duration, iRTT
_ROW = struct.Struct("<BBBBiiIII9q")
_ODD = 2  # the row's values did not fit the packed fields (RowStore._odd has the row)
_NOTES = 4  # the row has notes (its note counts: RowStore._note_sets[its notes field])


class RowStore:
    """``stats``' rows of every conversation, packed: the fields of
    :class:`ConversationStats` (``conversation_stats``), 96 bytes each in one
    ``bytearray`` a protocol, placed by stream number.

    Why: ``stats`` kept every :class:`Conversation` to the end (its analysis state,
    ~2.5 kB each in Python) only to read a dozen numbers from it. The tracker now forgets
    a conversation as ``show``'s does (``keep=False``'s two queues) and hands it here
    (``on_forget``); :meth:`finish` adds the rows of those still held when the capture
    is done. Addresses are stored as numbers of a table of the distinct ones (a capture
    has few), and so are a row's note counts (of the distinct sets: nearly every closed
    connection has the same one, ``enters TIME_WAIT`` once); a row whose numbers do not
    fit 64 bits (a damaged timestamp) beside it in a dict by ``(protocol, stream)``. The compiled engine keeps the
    same rows as C structs (``Row`` in ``sockcap/_speedups.c``).
    """

    def __init__(self) -> None:
        self._packed = (bytearray(), bytearray())  # TCP, UDP
        self._streams = [0, 0]  # rows placed: the highest stream + 1
        self._addrs: dict[str, int] = {}
        self._addr_list: list[str] = []
        self._note_ids: dict[tuple[tuple[Note, int], ...], int] = {}
        self._note_sets: list[tuple[tuple[Note, int], ...]] = []
        self._odd: dict[tuple[int, int], ConversationStats] = {}

    def _addr(self, addr: str) -> int:
        n = self._addrs.get(addr)
        if n is None:
            n = self._addrs[addr] = len(self._addr_list)
            self._addr_list.append(addr)
        return n

    def has(self, proto: int, stream: int) -> bool:
        k = 0 if proto == IPPROTO_TCP else 1
        packed = self._packed[k]
        return stream * _ROW.size < len(packed) and packed[stream * _ROW.size] != 0

    def add(self, c: Conversation) -> None:
        """Keep the row of ``c`` (once: a conversation already kept is left alone)."""
        if self.has(c.proto, c.stream):
            return
        row = conversation_stats(c)
        k = 0 if c.proto == IPPROTO_TCP else 1
        packed, at = self._packed[k], row.stream * _ROW.size
        if len(packed) < at + _ROW.size:
            packed.extend(bytes(at + _ROW.size - len(packed)))
        flags, notes = 1, 0
        if row.notes:
            flags |= _NOTES
            notes = self._note_set(tuple(row.notes.items()))
        try:
            _ROW.pack_into(packed, at, flags, _ROLES.index(row.roles), _OUTCOMES.index(row.ended),
                           0, row.client[1], row.server[1], self._addr(row.client[0]),
                           self._addr(row.server[0]), notes, *row.packets, *row.bytes, *row.payload,
                           row.start_ns, row.duration_ns, row.irtt_ns)
        except struct.error:  # a number beyond 64 bits: the row as it is
            self._odd[(k, row.stream)] = row
            packed[at] = flags | _ODD
        self._streams[k] = max(self._streams[k], row.stream + 1)

    def _note_set(self, counts: tuple[tuple[Note, int], ...]) -> int:
        n = self._note_ids.get(counts)
        if n is None:
            n = self._note_ids[counts] = len(self._note_sets)
            self._note_sets.append(counts)
        return n

    def finish(self, live: Iterable[Conversation]) -> None:
        """The rows of the conversations not forgotten when the capture is done."""
        for c in live:
            self.add(c)

    def __len__(self) -> int:
        return self._streams[0] + self._streams[1]

    def row(self, i: int) -> ConversationStats:
        """Row ``i``: TCP, then UDP, each by stream."""
        k, stream = (0, i) if i < self._streams[0] else (1, i - self._streams[0])
        (flags, roles, ended, _, cport, sport, caddr, saddr, notes_id, up_packets, down_packets,
         up_bytes, down_bytes, up_payload, down_payload, start, duration,
         irtt) = _ROW.unpack_from(self._packed[k], stream * _ROW.size)
        if not flags:
            raise LookupError(stream)  # a stream number no conversation was kept for
        if flags & _ODD:
            return self._odd[(k, stream)]
        notes = dict(self._note_sets[notes_id]) if flags & _NOTES else {}
        return ConversationStats(
            "UDP" if k else "TCP", stream, (self._addr_list[caddr], cport),
            (self._addr_list[saddr], sport), _ROLES[roles], (up_packets, down_packets),
            (up_bytes, down_bytes), (up_payload, down_payload), start, duration, irtt,
            notes, _OUTCOMES[ended])
