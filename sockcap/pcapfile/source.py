"""A bounded read-ahead buffer over a binary stream, seekable or not.

The reader asks for "``need`` bytes from here" and slices records out of ``buf`` itself with
precompiled ``struct`` formats. The buffer holds the unread tail plus at most one read of
``max(CHUNK, need)`` bytes, so memory is bounded by the largest record the caller agrees to
ask for (the reader checks every length field against its limit before asking), never by
the file size.

``read1`` is used when the stream has it: on a pipe it returns what has arrived instead of
waiting for a full chunk, so ``tcpdump -w - | sockcap show -`` shows packets as they come,
and on a file it returns a whole chunk in one system call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack
from typing import IO, BinaryIO

from sockcap.errors import InputError
from sockcap.i18n import _

CHUNK = 1 << 20  # bytes asked for per read


class ByteSource:
    """Unread bytes of a stream: ``buf[pos:]``, which starts at file offset ``base + pos``."""

    __slots__ = ("buf", "pos", "base", "eof", "_read")

    def __init__(self, stream: IO[bytes]) -> None:
        read1: Callable[[int], bytes] | None = getattr(stream, "read1", None)
        self._read: Callable[[int], bytes] = read1 if read1 is not None else stream.read
        self.buf = b""
        self.pos = 0
        self.base = 0  # file offset of buf[0]
        self.eof = False

    @property
    def offset(self) -> int:
        """File offset of the next unread byte."""
        return self.base + self.pos

    @property
    def left(self) -> int:
        """Bytes buffered and not yet consumed."""
        return len(self.buf) - self.pos

    def fill(self, need: int) -> bool:
        """Make ``need`` bytes available at ``pos`` (which becomes 0); False at end of stream.

        ``need`` must already be bounded by the caller.
        """
        parts = [self.buf[self.pos :]]
        have = len(parts[0])
        self.base += self.pos
        self.pos = 0
        while have < need and not self.eof:
            chunk = self._read(max(CHUNK, need - have))
            if not chunk:
                self.eof = True
            have += len(chunk or b"")
            parts.append(chunk or b"")
        self.buf = b"".join(parts)
        return have >= need


def open_input(path: str, stack: ExitStack) -> BinaryIO:
    """The capture file to read (``-``: stdin), closed with ``stack``; a file that cannot
    be opened is one line of bad input. Every command that reads a file starts here."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return stack.enter_context(open(path, "rb"))
    except IsADirectoryError as e:
        raise InputError(_("{path} is a directory, not a capture file").format(path=path)) from e
    except FileNotFoundError as e:
        raise InputError(_("no such file: {path}").format(path=path)) from e
    except PermissionError as e:
        raise InputError(_("cannot read {path}: permission denied").format(path=path)) from e
