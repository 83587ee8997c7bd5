"""A large capture read in byte ranges: which rows a range holds.

Spark reads a big text file in byte ranges, and a line belongs to the range where it
starts; the task of a range finds its first line by looking for the next newline. A
classic pcap file has no such mark (any bytes may follow a record), and a guess from
plausible-looking headers can be fooled by a payload that carries a pcap. The records
are chained instead: each header gives the length to the next one, so a walk over the
16-byte headers from the file header finds every boundary exactly, reading no packet
data (:func:`pcap_window`). A record belongs to the range where its header starts.

The rows of a packet depend on every packet before it (its number, its stream, its
relative sequence numbers, its expert notes), so a range's task runs the pipeline from
the start of the file and makes rows only for its own records
(:class:`~sockcap.export.rows.Window`): the union of the ranges' rows is the whole
file's, with nothing twice. The decoding of the earlier records is repeated by each
task; the rows (the larger cost, with Spark's conversion) are made once, in parallel.

pcapng files (blocks of several kinds, some skipped by the reader with a warning) and
compressed files (no seeking into a gzip stream, as Spark does not split ``.gz`` text)
are read whole, one task a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from sockcap.export.rows import WHOLE, Window
from sockcap.pcapfile.pcap import (
    FILE_HEADER_LEN,
    MAX_RECORD_LEN,
    RECORD,
    RECORD_HEADER_LEN,
    parse_pcap_header,
    pcap_magic,
)

CHUNK = 1 << 20  # bytes read at a time by the walk


def splittable(path: str | Path) -> bool:
    """Whether a file can be read in byte ranges: an uncompressed classic pcap."""
    try:
        with open(path, "rb") as f:
            return pcap_magic(f.read(4)) is not None
    except OSError:
        return False  # read whole: the reading task reports the error


def pcap_window(path: str | Path, start: int, end: int | None) -> Window | None:
    """The rows of the records whose headers start in ``[start, end)`` (``end`` None: to
    the end of the file), or None when the range holds none of them and not the end.

    The range that holds the end of the records (the end of the file, or where the file
    is cut short or damaged, where the reader will stop too) also writes the
    conversations still live there.
    """
    if start <= 0 and end is None:
        return WHOLE
    with open(path, "rb") as f:
        head = f.read(FILE_HEADER_LEN)
        if len(head) < FILE_HEADER_LEN or pcap_magic(head[:4]) is None:
            return WHOLE if start <= 0 else None  # the reader says what is wrong
        unpack = RECORD[parse_pcap_header(head).order].unpack_from
        size = os.fstat(f.fileno()).st_size
        first = 0
        number, offset = 1, FILE_HEADER_LEN
        buf, base = b"", offset
        while True:
            if not first and offset >= start:
                first = number
            if end is not None and offset >= end:
                return Window(first, number, last=False) if number > first else None
            at = offset - base
            if at + RECORD_HEADER_LEN > len(buf):
                f.seek(offset)
                buf, base, at = f.read(CHUNK), offset, 0
            if at + RECORD_HEADER_LEN > len(buf):
                break  # the end of the file, or a header cut short
            incl = unpack(buf, at)[2]
            if incl > MAX_RECORD_LEN or offset + RECORD_HEADER_LEN + incl > size:
                break  # damaged or cut short: the reader stops before this record
            offset += RECORD_HEADER_LEN + incl
            number += 1
        # the records end at ``offset``: in this range, or before it
        if not first:
            return None
        return Window(first, 0, last=True)
