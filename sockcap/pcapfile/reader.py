"""Streaming reader for pcap and pcapng capture files: the file edge of sockcap.

``open_capture(stream)`` reads the file header, tells the format apart and returns a
:class:`CaptureReader`, an iterator of :class:`~sockcap.decode.records.RawFrame`.

Design:

- Streaming with bounded memory. Bytes come from a :class:`~.source.ByteSource` in 1 MiB
  reads; every length field is checked against its limit (262144 bytes per pcap record as
  in libpcap, 16 MiB per pcapng block) *before* the buffer is asked for that much, so no
  length in a file can make the reader allocate more. Works on pipes (no seek, no tell).
- Speed. The pcap loop is one generator with everything in locals: one precompiled
  ``unpack_from`` per record, one slice for the data and one tuple per frame; unusual
  records leave the loop through a single comparison into a slow path. pcapng is a loop
  over blocks with a handler per block type.
- Damage is handled as libpcap does, and said in one line. A file that is empty or not a
  capture raises :class:`~sockcap.errors.NotACaptureError` from ``open_capture``. Damage
  to the framing (a record or block cut short, a length over its limit, a pcapng trailer
  that disagrees) raises :class:`~sockcap.errors.CaptureFileError` *after* every good
  packet before it has been yielded, because nothing after it can be trusted. Damage
  inside an intact pcapng block (a packet on an undefined interface, packet data longer
  than its block) skips that block with a warning and reading goes on. Oddities that are
  safe to keep (a record over the snap length but within 262144 bytes, a captured length
  over the wire length, a timestamp fraction out of range) keep the packet, as Wireshark
  does, and add a warning: libpcap would cut such a record to the snap length, but the
  bytes are in the file and the decoder bounds-checks every read anyway.
- ``warnings`` holds the first :data:`MAX_WARNINGS` lines; ``skipped`` counts every
  event by kind, so a file with a million odd records stays small in memory.
- Prefilter. A consumer that wants only the frames of one conversation can say which
  bytes such a frame must contain (:meth:`CaptureReader.prefilter`; ``sockcap follow
  --stream N`` gives the conversation's port pair, which every TCP or UDP header of it
  carries as four adjacent bytes whatever the link and network layers). The fast loops
  then find the next occurrence with ``bytes.find`` (C speed, each buffered byte scanned
  once per needle) and step over every record that ends before it with one comparison:
  no slice, no tuple, no decode. Skipped records are still framed, checked and counted,
  so frame numbers and damage reports stay the file's. The filter is one-sided by design:
  a frame holding a needle anywhere (its payload included) is yielded, and so is every
  frame the general pcapng path handles; the consumer still decides about each frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from sockcap.decode.records import NO_TIMESTAMP, RawFrame
from sockcap.errors import CaptureFileError, NotACaptureError
from sockcap.i18n import _
from sockcap.pcapfile import pcapng
from sockcap.pcapfile.pcap import (
    FILE_HEADER_LEN,
    MAX_RECORD_LEN,
    RECORD,
    RECORD_HEADER_LEN,
    PcapHeader,
    parse_pcap_header,
    pcap_magic,
)
from sockcap.pcapfile.pcapng import BT_EPB, BT_IDB, BT_OPB, BT_SHB, BT_SPB, Interface
from sockcap.pcapfile.prefilter import NO_FILTER, NeedleSearch
from sockcap.pcapfile.source import ByteSource

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import IO

    from sockcap.pipeline.engine import FrameSink

MAX_WARNINGS = 100  # warning lines kept; ``skipped`` still counts every event
MAX_INTERFACES = 65536  # IDBs kept per pcapng section
NS_PER_SEC = 1_000_000_000
_SHB_BYTES = BT_SHB.to_bytes(4, "little")
_EPB_LEN = 32  # smallest EPB or obsolete packet block: 12 framing + 20 fixed fields
_SPB_LEN = 16
_IDB_LEN = 20
_SHB_LEN = 28

# keys of ``CaptureReader.skipped``
OVER_SNAPLEN = "record over snap length (kept)"
OVER_WIRELEN = "captured length over wire length (kept)"
BAD_FRACTION = "timestamp fraction out of range (kept)"
UNDEFINED_INTERFACE = "packet on undefined interface"
SHORT_PACKET_BLOCK = "packet block too short"
SHORT_INTERFACE_BLOCK = "interface block too short"
TOO_MANY_INTERFACES = "interfaces over the limit"

_new = tuple.__new__
_BlockHandler = Callable[[bytes, int, int], "RawFrame | None"]


class CaptureReader:
    """An open capture file: iterate it for frames; the attributes say what was read.

    Attributes:
        format: ``"pcap"`` or ``"pcapng"``.
        linktypes: interface id -> LINKTYPE_*, filled as interfaces are seen (pcapng: of
            the current section; pcap: ``{0: linktype}``).
        snaplen: pcap: the file header's snap length (0: not given); pcapng: the snap
            length of the current section's first interface (0: none or no limit).
        packets: frames yielded so far.
        skipped: kind -> count of blocks skipped and odd records met.
        warnings: one line per piece of non-fatal damage (the first MAX_WARNINGS).
    """

    def __init__(self, source: ByteSource, fmt: str) -> None:
        self.format = fmt
        self.linktypes: dict[int, int] = {}
        self.snaplen = 0
        self.packets = 0
        self.skipped: dict[str, int] = {}
        self.warnings: list[str] = []
        self._src = source
        self._frames: Iterator[RawFrame] = iter(())
        self._layout = pcapng.LAYOUTS["<"]
        self._interfaces: list[Interface] = []
        self._hits: NeedleSearch | None = None
        # A consumer that takes plain records straight from the buffer (the compiled
        # timeline, sockcap.pipeline.engine): set before iterating, never with a
        # prefilter. Records it takes are counted in ``packets`` and not yielded.
        self.sink: FrameSink | None = None

    def prefilter(self, needles: Iterable[bytes]) -> None:
        """From the next frame on, frames that contain none of ``needles`` may be skipped.

        A skipped frame is read, checked and counted in ``packets`` like any other, so
        after each frame yielded ``packets`` is still its number in the file. It is a
        filter that may pass more than asked (a needle in a payload, a frame the general
        pcapng path reads), never less: the consumer checks the frames it gets.
        """
        found = tuple(n for n in needles if n)
        if not found:
            raise ValueError(_("prefilter needs at least one non-empty byte string"))
        self._hits = NeedleSearch(found)

    def _next_hit(self, buf: bytes, pos: int) -> int:
        """Where the next needle starts in ``buf`` at or after ``pos``; -1: no prefilter."""
        hits = self._hits
        return NO_FILTER if hits is None else hits.next(buf, pos)

    def __iter__(self) -> Iterator[RawFrame]:
        return self._frames

    def __next__(self) -> RawFrame:
        return next(self._frames)

    # -- shared: notes and errors -------------------------------------------------------

    def _note(self, kind: str, line: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(line)

    def _cut_short(self, what: str, need: int, left: int) -> CaptureFileError:
        where = f"after packet {self.packets}" if self.packets else "before the first packet"
        return CaptureFileError(
            _("file cut short {where}: {what} truncated (needs {need} bytes, {left} left)").format(where=where, what=what, need=need, left=left),
            packets_read=self.packets,
            offset=self._src.offset,
        )

    def _damaged(self, what: str, offset: int) -> CaptureFileError:
        where = f"after packet {self.packets}" if self.packets else "before the first packet"
        return CaptureFileError(
            _("damaged file {where}: {what}").format(where=where, what=what), packets_read=self.packets, offset=offset
        )

    # -- pcap ---------------------------------------------------------------------------

    def _pcap_frames(self, header: PcapHeader) -> Iterator[RawFrame]:
        src = self._src
        unpack = RECORD[header.order].unpack_from
        linktype, mult, limit = header.linktype, header.frac_ns, header.record_limit
        frac_end = NS_PER_SEC // mult
        buf, pos, end, n = src.buf, src.pos, len(src.buf), 0
        hit = self._next_hit(buf, pos)  # a record that ends at or before it is skipped
        sink = self.sink if self._hits is None else None
        big = header.order == ">"
        while True:
            if sink is not None:
                pos, taken = sink.pcap(buf, pos, linktype, mult, limit, big)
                if taken:
                    n += taken
                    self.packets = n
                if sink.done:
                    src.pos = pos
                    return
                if sink.handover:
                    sink = self.sink = None
            if end - pos < RECORD_HEADER_LEN:
                src.pos = pos
                if sink is not None:
                    sink.flush()  # what the sink made is out before a read that may wait
                if not src.fill(RECORD_HEADER_LEN):
                    self._end_of_records()
                    return
                buf, pos, end = src.buf, 0, len(src.buf)
                hit = self._next_hit(buf, pos)
            sec, frac, incl, orig = unpack(buf, pos)
            if incl > limit or incl > orig or frac >= frac_end:
                src.pos = pos
                self._odd_record(header, incl, orig, frac)
            stop = pos + RECORD_HEADER_LEN + incl
            if stop > end:
                src.pos = pos
                if sink is not None:
                    sink.flush()
                if not src.fill(RECORD_HEADER_LEN + incl):
                    raise self._cut_short("record body", incl, src.left - RECORD_HEADER_LEN)
                buf, pos, end = src.buf, 0, len(src.buf)
                stop = RECORD_HEADER_LEN + incl
                hit = self._next_hit(buf, pos)
            n += 1
            self.packets = n
            if hit >= stop:  # prefiltered: no needle in this record
                pos = stop
                continue
            yield _new(RawFrame, (sec * NS_PER_SEC + frac * mult, linktype,
                                  buf[pos + RECORD_HEADER_LEN : stop], orig, 0))
            pos = stop
            if self._hits is not None:
                hit = self._hits.next(buf, pos)

    def _end_of_records(self) -> None:
        """At end of stream between records: clean if nothing is left over."""
        if self._src.left:
            raise self._cut_short("record header", RECORD_HEADER_LEN, self._src.left)

    def _odd_record(self, header: PcapHeader, incl: int, orig: int, frac: int) -> None:
        """The slow path of the pcap loop: raise on a length over the limit, else note."""
        number = self.packets + 1
        if incl > MAX_RECORD_LEN:
            raise self._damaged(
                f"record {number} at offset {self._src.offset} claims {incl} bytes,"
                f" over the {MAX_RECORD_LEN}-byte limit",
                self._src.offset,
            )
        if incl > header.record_limit:
            self._note(OVER_SNAPLEN, f"packet {number}: record length {incl} over snap length"
                                     f" {header.record_limit}, kept")
        if incl > orig:
            self._note(OVER_WIRELEN, f"packet {number}: captured length {incl} over wire"
                                     f" length {orig}, kept")
        if frac * header.frac_ns >= NS_PER_SEC:
            unit = "microseconds" if header.frac_ns == 1000 else "nanoseconds"
            self._note(BAD_FRACTION, f"packet {number}: {unit} field {frac} out of range,"
                                     " carried into the seconds")

    # -- pcapng: blocks -----------------------------------------------------------------

    def _pcapng_frames(self) -> Iterator[RawFrame]:
        src = self._src
        handlers: dict[int, _BlockHandler] = {BT_EPB: self._epb, BT_SPB: self._spb,
                                              BT_OPB: self._opb, BT_IDB: self._idb,
                                              BT_SHB: self._shb}
        while True:
            yield from self._plain_epbs()
            if self.sink is not None:
                if self.sink.done:
                    return
                self.sink.flush()  # what the sink made is out before a read that may wait
            blen = self._next_block()
            if blen is None:
                return
            btype = self._layout.u32.unpack_from(src.buf, src.pos)[0]
            frame = handlers.get(btype, self._skip)(src.buf, src.pos, blen)
            src.pos += blen
            if frame is not None:
                self.packets += 1
                yield frame

    def _plain_epbs(self) -> Iterator[RawFrame]:
        """The fast path: a run of buffered EPBs with nothing odd about them.

        It stops at the first block that is anything else (another type, not wholly in
        the buffer, a length or field that needs a check or a warning); the general path
        then handles that one block, with all its checks.
        """
        src, layout, interfaces = self._src, self._layout, self._interfaces
        head, epb, u32 = layout.head.unpack_from, layout.epb.unpack_from, layout.u32.unpack_from
        buf, pos, end, count = src.buf, src.pos, len(src.buf), len(interfaces)
        hit = self._next_hit(buf, pos)  # a block that ends at or before it is skipped
        sink = self.sink if self._hits is None else None
        big = layout is pcapng.LAYOUTS[">"]
        while end - pos >= _EPB_LEN:
            if sink is not None:
                pos, taken = sink.pcapng(buf, pos, interfaces, big)
                if taken:
                    self.packets += taken
                    src.pos = pos
                if sink.handover:
                    sink = self.sink = None
                elif sink.done or end - pos < _EPB_LEN:
                    return
            btype, blen = head(buf, pos)
            if btype != BT_EPB or blen > end - pos or blen < _EPB_LEN or blen & 3:
                break
            iface_id, high, low, caplen, wirelen = epb(buf, pos + 8)
            if (iface_id >= count or caplen > blen - _EPB_LEN or caplen > wirelen
                    or u32(buf, pos + blen - 4)[0] != blen):
                break
            linktype, snaplen, mult, div, offset_ns = interfaces[iface_id]
            if snaplen and caplen > snaplen:
                break
            self.packets += 1
            if hit >= pos + blen:  # prefiltered: no needle in this block
                pos += blen
                src.pos = pos
                continue
            yield _new(RawFrame, (pcapng.ts_ns(high, low, mult, div, offset_ns), linktype,
                                  buf[pos + 28 : pos + 28 + caplen], wirelen, iface_id))
            pos += blen
            src.pos = pos
            if self._hits is not None:
                hit = self._hits.next(buf, pos)

    def _next_block(self) -> int | None:
        """Buffer the next whole block and return its length; None at a clean end."""
        src = self._src
        if src.left < pcapng.MIN_BLOCK_LEN and not src.fill(pcapng.MIN_BLOCK_LEN):
            if src.left == 0:
                return None
            raise self._cut_short("block header", pcapng.MIN_BLOCK_LEN, src.left)
        if src.buf[src.pos : src.pos + 4] == _SHB_BYTES:
            self._set_byte_order(src.buf[src.pos : src.pos + 12])
        blen: int = self._layout.u32.unpack_from(src.buf, src.pos + 4)[0]
        self._check_block_length(blen)
        if src.left < blen and not src.fill(blen):
            raise self._cut_short("block", blen, src.left)
        trailer = self._layout.u32.unpack_from(src.buf, src.pos + blen - 4)[0]
        if trailer != blen:
            raise self._damaged(f"block at offset {src.offset} has length {blen} at its start"
                                f" and {trailer} at its end", src.offset)
        return blen

    def _set_byte_order(self, head: bytes) -> None:
        order = pcapng.section_order(head)
        if order is None:
            offset = self._src.offset
            raise self._damaged(f"section header at offset {offset} has no byte-order magic",
                                offset)
        self._layout = pcapng.LAYOUTS[order]

    def _check_block_length(self, blen: int) -> None:
        offset = self._src.offset
        if blen < pcapng.MIN_BLOCK_LEN or blen % 4:
            raise self._damaged(f"block at offset {offset} has length {blen}"
                                " (under 12 or not a multiple of 4)", offset)
        if blen > pcapng.MAX_BLOCK_LEN:
            raise self._damaged(f"block at offset {offset} claims {blen} bytes,"
                                " over the 16 MiB limit", offset)

    def _skip(self, buf: bytes, pos: int, blen: int) -> None:
        name = pcapng.block_name(self._layout.u32.unpack_from(buf, pos)[0])
        self.skipped[name] = self.skipped.get(name, 0) + 1

    def _shb(self, buf: bytes, pos: int, blen: int) -> None:
        offset = self._src.offset
        if blen < _SHB_LEN:
            raise self._damaged(f"section header at offset {offset} is {blen} bytes long",
                                offset)
        _magic, major, minor = self._layout.shb.unpack_from(buf, pos + 8)
        if major != pcapng.VERSION_MAJOR:
            raise self._damaged(f"section header at offset {offset} has pcapng version"
                                f" {major}.{minor}", offset)
        self._interfaces = []
        self.linktypes.clear()
        self.snaplen = 0

    def _idb(self, buf: bytes, pos: int, blen: int) -> None:
        where = f"interface block at offset {self._src.offset}"
        if blen < _IDB_LEN:
            self._note(SHORT_INTERFACE_BLOCK, f"{where} is {blen} bytes long; skipped")
        elif len(self._interfaces) >= MAX_INTERFACES:
            self._note(TOO_MANY_INTERFACES, f"{where}: over {MAX_INTERFACES} interfaces"
                                            " in the section; skipped")
        else:
            iface = pcapng.parse_idb(buf[pos : pos + blen], self._layout)
            if not self._interfaces:
                self.snaplen = iface.snaplen
            self.linktypes[len(self._interfaces)] = iface.linktype
            self._interfaces.append(iface)

    # -- pcapng: packets ----------------------------------------------------------------

    def _epb(self, buf: bytes, pos: int, blen: int) -> RawFrame | None:
        if blen < _EPB_LEN:
            self._short_packet_block(blen, 0)
            return None
        iface_id, high, low, caplen, wirelen = self._layout.epb.unpack_from(buf, pos + 8)
        return self._packet(buf, pos + 28, blen - _EPB_LEN, iface_id, high, low, caplen,
                            wirelen)

    def _opb(self, buf: bytes, pos: int, blen: int) -> RawFrame | None:
        if blen < _EPB_LEN:
            self._short_packet_block(blen, 0)
            return None
        iface_id, _drops, high, low, caplen, wirelen = self._layout.opb.unpack_from(buf, pos + 8)
        return self._packet(buf, pos + 28, blen - _EPB_LEN, iface_id, high, low, caplen,
                            wirelen)

    def _spb(self, buf: bytes, pos: int, blen: int) -> RawFrame | None:
        """A Simple Packet Block: interface 0 and no timestamp, which the frame says with
        NO_TIMESTAMP (libpcap gives 0, the epoch, and a timeline a huge negative time)."""
        if blen < _SPB_LEN:
            self._short_packet_block(blen, 0)
            return None
        wirelen = self._layout.u32.unpack_from(buf, pos + 8)[0]
        room = blen - _SPB_LEN
        snaplen = self._interfaces[0].snaplen if self._interfaces else 0
        caplen = min(wirelen, snaplen or room, room)
        frame = self._packet(buf, pos + 12, room, 0, 0, 0, caplen, wirelen)
        return frame._replace(ts_ns=NO_TIMESTAMP) if frame is not None else None

    def _packet(self, buf: bytes, start: int, room: int, iface_id: int, high: int, low: int,
                caplen: int, wirelen: int) -> RawFrame | None:
        """A frame from a packet block's fields, or None (noted) if they do not fit."""
        if caplen > room:
            self._short_packet_block(room, caplen)
            return None
        if iface_id >= len(self._interfaces):
            offset = self._src.offset
            self._note(UNDEFINED_INTERFACE, f"packet block at offset {offset} is on interface"
                       f" {iface_id}, but the section has {len(self._interfaces)}; skipped")
            return None
        iface = self._interfaces[iface_id]
        if caplen > wirelen or (iface.snaplen and caplen > iface.snaplen):
            self._odd_packet(iface, caplen, wirelen)
        ts_ns = pcapng.ts_ns(high, low, iface.mult, iface.div, iface.offset_ns)
        return _new(RawFrame, (ts_ns, iface.linktype, buf[start : start + caplen], wirelen,
                               iface_id))

    def _short_packet_block(self, room: int, caplen: int) -> None:
        offset = self._src.offset
        what = f"holds {room} bytes of packet data, not {caplen}" if caplen else "is too short"
        self._note(SHORT_PACKET_BLOCK, f"packet block at offset {offset} {what}; skipped")

    def _odd_packet(self, iface: Interface, caplen: int, wirelen: int) -> None:
        number = self.packets + 1
        if iface.snaplen and caplen > iface.snaplen:
            self._note(OVER_SNAPLEN, f"packet {number}: captured length {caplen} over snap"
                                     f" length {iface.snaplen}, kept")
        if caplen > wirelen:
            self._note(OVER_WIRELEN, f"packet {number}: captured length {caplen} over wire"
                                     f" length {wirelen}, kept")


def open_capture(stream: IO[bytes]) -> CaptureReader:
    """Open a pcap or pcapng stream (a file, a pipe, stdin) for reading frames.

    Reads only the file header here; frames are read as the reader is iterated.
    Raises NotACaptureError for an empty stream or one that is not a capture file, and
    CaptureFileError if the file header itself is cut short.
    """
    source = ByteSource(stream)
    source.fill(pcapng.SHB_HEAD_LEN)
    head = source.buf[:4]
    if not head:
        raise NotACaptureError(_("empty file: not a capture file"))
    if len(head) < 4:
        raise NotACaptureError(_("not a capture file: only {head} bytes long").format(head=len(head)))
    if pcap_magic(head) is not None:
        return _open_pcap(source)
    if head == _SHB_BYTES:
        return _open_pcapng(source)
    raise NotACaptureError(_("not a capture file: unknown magic 0x{head}").format(head=head.hex()))


def _open_pcap(source: ByteSource) -> CaptureReader:
    reader = CaptureReader(source, "pcap")
    if not source.fill(FILE_HEADER_LEN):
        raise reader._cut_short("file header", FILE_HEADER_LEN, source.left)
    header = parse_pcap_header(source.buf[:FILE_HEADER_LEN])
    source.pos = FILE_HEADER_LEN
    reader.snaplen = header.snaplen
    reader.linktypes[0] = header.linktype
    reader._frames = reader._pcap_frames(header)
    return reader


def _open_pcapng(source: ByteSource) -> CaptureReader:
    """Check the first section header; the block loop reads it again as its first block."""
    reader = CaptureReader(source, "pcapng")
    order = pcapng.section_order(source.buf[:12]) if source.left >= 12 else None
    if order is None:
        raise NotACaptureError(_("not a capture file: pcapng section header without its"
                               " byte-order magic"))
    if source.left < pcapng.SHB_HEAD_LEN:
        raise reader._cut_short("section header", pcapng.SHB_HEAD_LEN, source.left)
    _magic, major, minor = pcapng.LAYOUTS[order].shb.unpack_from(source.buf, 8)
    if major != pcapng.VERSION_MAJOR:
        raise NotACaptureError(_("not a capture file: pcapng version {major}.{minor} (only 1.x is read)").format(major=major, minor=minor))
    reader._frames = reader._pcapng_frames()
    return reader
