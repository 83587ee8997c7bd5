"""The classic pcap format: file header and record header, parsed and packed.

Pure functions on bytes; the streaming loop lives in :mod:`sockcap.pcapfile.reader` and the
file handling in :mod:`sockcap.pcapfile.writer`. Layout and limits follow libpcap's
``sf-pcap.c`` and the format description at https://www.tcpdump.org/manpages/pcap-savefile.5.html:

- a 24-byte file header: magic, version 2.4, thiszone, sigfigs, snaplen, link-type field;
- per packet a 16-byte record header: seconds, fraction (micro- or nanoseconds, by magic),
  captured length, original length, then the captured bytes.

The byte order is the writer's, told by how the magic reads.
"""

# No `from __future__ import annotations` here: with it, typing.NamedTuple compiles each
# field's annotation string into a ForwardRef at import (start-up, bench/startup_bench.py).
import struct

from sockcap._typing import NamedTuple
from sockcap.decode.records import NO_TIMESTAMP
from sockcap.errors import NotACaptureError
from sockcap.i18n import _

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
FILE_HEADER_LEN = 24
RECORD_HEADER_LEN = 16
VERSION_MAJOR = 2
VERSION_MINOR = 4
# libpcap's MAXIMUM_SNAPLEN: the largest record it will read (sf-pcap.c, max_snaplen_for_dlt)
MAX_RECORD_LEN = 262144
# libpcap's LT_LINKTYPE(): the upper bits carry the FCS length (LT_FCS_LENGTH_PRESENT)
LINKTYPE_MASK = 0x03FFFFFF

_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_HEADER = {order: struct.Struct(order + "IHHiIII") for order in "<>"}
RECORD = {order: struct.Struct(order + "IIII") for order in "<>"}
_LE_FILE_HEADER = struct.Struct("<IHHiIII")
_LE_RECORD = struct.Struct("<IIII")


class PcapHeader(NamedTuple):
    """What a pcap file header says, as the reader needs it."""

    order: str  # struct byte-order character: "<" little-endian, ">" big-endian
    frac_ns: int  # nanoseconds per unit of the record's fraction field (1000 or 1)
    version: tuple[int, int]
    snaplen: int  # as written in the header (0 means "not given")
    linktype: int  # LINKTYPE_* with the FCS bits masked off

    @property
    def record_limit(self) -> int:
        """Captured lengths above this get a warning; libpcap's pcap_adjust_snapshot()."""
        if self.snaplen == 0 or self.snaplen > MAX_RECORD_LEN:
            return MAX_RECORD_LEN
        return self.snaplen


def pcap_magic(head: bytes) -> tuple[str, int] | None:
    """The byte order and fraction unit that the first four bytes announce, if pcap."""
    return _MAGICS.get(bytes(head[:4]))


def parse_pcap_header(head: bytes) -> PcapHeader:
    """Parse a complete 24-byte file header whose magic is a pcap magic."""
    magic = pcap_magic(head)
    if magic is None:
        raise NotACaptureError(_("not a capture file: unknown magic 0x{head}").format(head=head[:4].hex()))
    order, frac_ns = magic
    _magic, major, minor, _zone, _sigfigs, snaplen, ltfield = _HEADER[order].unpack_from(head)
    if major != VERSION_MAJOR:
        raise NotACaptureError(
            _("not a capture file: pcap version {major}.{minor} (only 2.x is read)").format(major=major, minor=minor)
        )
    return PcapHeader(order, frac_ns, (major, minor), snaplen, ltfield & LINKTYPE_MASK)


def pack_file_header(linktype: int, snaplen: int = MAX_RECORD_LEN) -> bytes:
    """A little-endian microsecond pcap 2.4 file header."""
    return _LE_FILE_HEADER.pack(MAGIC_USEC, VERSION_MAJOR, VERSION_MINOR, 0, 0, snaplen, linktype)


def pack_record(ts_ns: int, data: bytes, wirelen: int) -> bytes:
    """One little-endian microsecond record: header and captured bytes.

    The timestamp is rounded down to the microsecond; a frame without one
    (``NO_TIMESTAMP``, from a pcapng Simple Packet Block) is written at 0, as libpcap
    reads it. Raises ``ValueError`` when the seconds or the lengths do not fit the
    format's unsigned 32-bit fields.
    """
    if ts_ns == NO_TIMESTAMP:
        ts_ns = 0
    sec, usec = divmod(ts_ns // 1000, 1_000_000)
    try:
        return _LE_RECORD.pack(sec, usec, len(data), wirelen) + data
    except struct.error as exc:
        raise ValueError(_("timestamp {ts_ns} ns or length {wirelen} does not fit pcap").format(ts_ns=ts_ns, wirelen=wirelen)) from exc
