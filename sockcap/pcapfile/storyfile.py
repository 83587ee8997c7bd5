"""A capture file that keeps the programs' calls and the kernel's events: pcapng with
comments (the file edge).

Why comments, not a custom block or a second file: a pcapng Custom Block needs a Private
Enterprise Number that sockcap does not have, Wireshark shows a custom block's contents
nowhere, and a file beside the capture is lost when the capture is copied or mailed.
Comments (``opt_comment``, option 1, draft-ietf-opsawg-pcapng section 3.5, allowed many
times in any block) are kept by Wireshark, editcap and mergecap and shown by them:

- the Section Header Block holds one comment per record
  (:func:`sockcap.analysis.storyrecords.story_records`), each ``sockcap-story `` and the
  record's JSON: what ``diagram`` and ``report`` of the file read back
  (:func:`read_story`); Wireshark lists them in Statistics › Capture File Properties;
- each packet a call or kernel event is tied to carries that call's or event's timeline
  line as its own comment (Wireshark's ``frame.comment``, a column away from the packet
  list): ``▸ client: send(b'hello') → 5 bytes``, ``◆ server: ESTABLISHED → CLOSE_WAIT``.
  These are for a person, written in the language of the run; sockcap never reads them.

The capture itself is written as classic pcap while it runs (crash-safe, see
:mod:`sockcap.pcapfile.writer`); when it is over and the file's name ends in
``.pcapng``, :func:`save_story` rewrites it as pcapng with the comments (a new file
beside it, renamed over it: a reader sees the old file or the new one, never half).
Packets keep their microsecond times (the pcapng default ``if_tsresol``), so every view
of the file is what it was.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Mapping, Sequence

from sockcap.errors import WriteError
from sockcap.i18n import _
from sockcap.pcapfile.pcapng import (
    BT_EPB,
    BT_IDB,
    BT_SHB,
    BYTE_ORDER_MAGIC,
    LAYOUTS,
    MAX_BLOCK_LEN,
    iter_options,
    section_order,
)
from sockcap.pcapfile.reader import open_capture

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any

PREFIX = "sockcap-story "
OPT_COMMENT = 1
OPT_SHB_USERAPPL = 4
MAX_OPTION = 0xFFFF  # an option's length is 16 bits
SECTION_ROOM = MAX_BLOCK_LEN - (1 << 20)  # the records' room in the section header
FILE_MODE = 0o600


def wants_story(path: str | None) -> bool:
    """Whether a capture saved to ``path`` keeps the calls and events (a .pcapng name)."""
    return path is not None and path.lower().endswith(".pcapng")


def _option(code: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def _block(btype: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def _section(records: Sequence[Mapping[str, Any]]) -> tuple[bytes, int]:
    """The Section Header Block with the records; how many did not fit (left out)."""
    import json  # here: `sockcap show` reads a story only when the file holds one

    options = [_option(OPT_SHB_USERAPPL, b"sockcap")]
    room, left_out = SECTION_ROOM, 0
    for rec in records:
        value = (PREFIX + json.dumps(rec, separators=(",", ":"), ensure_ascii=False)).encode()
        if len(value) > MAX_OPTION or len(value) + 8 > room:
            left_out += 1
            continue
        options.append(_option(OPT_COMMENT, value))
        room -= len(value) + 8
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1) + b"".join(options)
    return _block(BT_SHB, body + _option(0, b"")), left_out


def _packet(ts_ns: int, data: bytes, wirelen: int, comments: Sequence[str]) -> bytes:
    us = ts_ns // 1000
    head = struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(data), wirelen)
    opts = b"".join(_option(OPT_COMMENT, c.encode()[:MAX_OPTION]) for c in comments)
    body = head + data + b"\0" * (-len(data) % 4) + (opts + _option(0, b"") if opts else b"")
    return _block(BT_EPB, body)


def save_story(path: str, records: Sequence[Mapping[str, Any]],
               comments: Mapping[int, Sequence[str]]) -> int:
    """Rewrite the capture at ``path`` (classic pcap, as written live) as pcapng holding
    ``records`` in its section header and ``comments`` (packet number -> lines) on its
    packets. Keeps the file's owner; returns how many records did not fit (0 normally).
    WriteError (one line) when it cannot: the pcap file is then left as it was."""
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        st = os.stat(path)
        with open(path, "rb") as f:
            reader = open_capture(f)
            section, left_out = _section(records)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                out.write(section)
                linktype = -1
                for no, frame in enumerate(reader, 1):
                    if linktype < 0:
                        linktype = frame.linktype
                        out.write(_block(BT_IDB, struct.pack("<HHI", linktype, 0, 262144)))
                    out.write(_packet(frame.ts_ns, frame.data, frame.wirelen,
                                      comments.get(no, ())))
                if linktype < 0:  # no packet: an interface all the same (Ethernet)
                    out.write(_block(BT_IDB, struct.pack("<HHI", 1, 0, 262144)))
                out.flush()
                os.fchown(out.fileno(), st.st_uid, st.st_gid)
                os.fsync(out.fileno())
        os.replace(temp, path)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise WriteError(_("cannot keep the calls and kernel events in {path}: {exc}").format(
            path=path, exc=exc.strerror or exc)) from None
    return left_out


def read_story(path: str) -> list[dict[str, Any]]:
    """The records a capture file keeps (:func:`save_story`); [] for a file without any
    (classic pcap, another tool's pcapng, standard input or a pipe, a compressed file)."""
    if path == "-":
        return []
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a pipe is read once, by the reader
            return []
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or struct.unpack_from("<I", head)[0] != BT_SHB:
                return []
            order = section_order(head)
            if order is None:
                return []
            layout = LAYOUTS[order]
            length = layout.u32.unpack_from(head, 4)[0]
            if not 28 <= length <= MAX_BLOCK_LEN:
                return []
            block = head + f.read(length - 12)
    except OSError:
        return []
    records = []
    for code, value in iter_options(block[24:-4], layout):
        text = value.decode("utf-8", "replace")
        if code != OPT_COMMENT or not text.startswith(PREFIX):
            continue
        import json

        try:
            rec = json.loads(text[len(PREFIX):])
        except ValueError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records
