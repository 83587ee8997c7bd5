"""Pure decoding: bytes in, frozen records out; no I/O (see records.py).

:func:`decode_frame` turns a :class:`RawFrame` into a flat :class:`Packet` for any bytes
and any link type; damage becomes ``notes`` and a cut-short header sets ``truncated``.
"""

from sockcap.decode.frame import decode_frame
from sockcap.decode.records import (
    Packet,
    RawFrame,
    TcpFlags,
    TcpOption,
    TcpOptionKind,
)

__all__ = ["Packet", "RawFrame", "TcpFlags", "TcpOption", "TcpOptionKind", "decode_frame"]
