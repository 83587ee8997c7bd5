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

import importlib
import io
import sys
import zlib
from collections.abc import Callable
from contextlib import ExitStack

from sockcap._typing import cast
from sockcap.errors import CaptureFileError, InputError
from sockcap.i18n import _

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import IO, Any, BinaryIO

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
        have = len(self.buf) - self.pos
        parts = [self.buf[self.pos :]] if have else []
        self.base += self.pos
        self.pos = 0
        while have < need and not self.eof:
            # With bytes left over (a record cut by the end of the last read), read only
            # what completes the request: the buffer then ends on a record boundary, and the
            # next read's chunk becomes the buffer as it is, without being copied again.
            chunk = self._read(need - have if have else max(CHUNK, need))
            if not chunk:
                self.eof = True
                break
            have += len(chunk)
            parts.append(chunk)
        self.buf = parts[0] if len(parts) == 1 else b"".join(parts)
        return have >= need


# Compressed captures, as Wireshark opens them: (magic, name, module the reader needs)
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # RFC 8878 3.1.1
LZ4_MAGIC = b"\x04\x22\x4d\x18"  # LZ4 frame format
UNREADABLE = ((b"BZh", "bzip2", "bunzip2 -k"), (b"\xfd7zXZ\x00", "xz", "unxz -k"))


def open_input(path: str, stack: ExitStack) -> BinaryIO:
    """The capture file to read (``-``: stdin), closed with ``stack``, decompressed when it
    is gzip (always), zstd or lz4 (with ``sockcap[compressed]``); a file that cannot be
    opened is one line of bad input. Every command that reads a file starts here."""
    raw = sys.stdin.buffer if path == "-" else _open_file(path, stack)
    return _decompressed(raw, path, stack)


def _decompressed(raw: BinaryIO, path: str, stack: ExitStack) -> BinaryIO:
    peek: Callable[[int], bytes] | None = getattr(raw, "peek", None)
    head = peek(8)[:8] if peek is not None else b""
    if head.startswith(GZIP_MAGIC):
        import gzip

        return cast("BinaryIO", DecompressedInput(stack.enter_context(gzip.GzipFile(fileobj=raw)), "gzip", raw))
    if head.startswith(ZSTD_MAGIC):
        zstandard = _optional("zstandard", "zstd", path)
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return cast("BinaryIO", DecompressedInput(stack.enter_context(reader), "zstd", raw))
    if head.startswith(LZ4_MAGIC):
        lz4_frame = _optional("lz4.frame", "lz4", path)
        return cast("BinaryIO", DecompressedInput(stack.enter_context(lz4_frame.open(raw, "rb")), "lz4", raw))
    for magic, name, fix in UNREADABLE:
        if head.startswith(magic):
            raise InputError(_("{path} is compressed with {name}, which sockcap does not read: "
                               "decompress it first ({fix})").format(path=path, name=name,
                                                                    fix=fix))
    return raw


def _optional(module: str, name: str, path: str) -> Any:
    """The decompressor's module, or one line naming the compression and the fix."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise InputError(_("{path} is compressed with {name}: install "
                           "'sockcap[compressed]' to read it, or decompress it first").format(
                               path=path, name=name)) from e


class DecompressedInput(io.RawIOBase):
    """A decompressing stream whose damage (a bad or cut-short compressed stream) is a
    :class:`~sockcap.errors.CaptureFileError` like any other damage in the file."""

    def __init__(self, stream: Any, name: str, raw_file: BinaryIO) -> None:
        super().__init__()
        self.raw_file = raw_file  # the compressed file: how far a read is, for progress
        self._stream = stream
        self._name = name
        self._read1: Callable[[int], bytes] = getattr(stream, "read1", stream.read)

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        try:
            return self._read1(size)
        except (OSError, EOFError, zlib.error, ValueError) as e:
            raise CaptureFileError(_("the {name} stream is damaged or cut short: {error}").format(
                name=self._name, error=e)) from e

    def read(self, size: int = -1) -> bytes:
        return self.read1(size)

    def readinto(self, buffer: Any) -> int:
        data = self.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _open_file(path: str, stack: ExitStack) -> BinaryIO:
    try:
        return stack.enter_context(open(path, "rb"))
    except IsADirectoryError as e:
        raise InputError(_("{path} is a directory, not a capture file").format(path=path)) from e
    except FileNotFoundError as e:
        raise InputError(_("no such file: {path}").format(path=path)) from e
    except PermissionError as e:
        raise InputError(_("cannot read {path}: permission denied").format(path=path)) from e
