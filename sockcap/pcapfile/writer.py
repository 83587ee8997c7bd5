"""Writing classic pcap files: the file edge on the way out.

Format: little-endian, microsecond pcap 2.4 with snap length 262144 (tcpdump's default),
the format every tool reads. Timestamps are rounded down to the microsecond.

Design:

- A capture file can hold secrets, so it is created with mode 0600, and with ``O_EXCL``
  so an existing file is never overwritten without ``force``.
- Given an :class:`~sockcap.owner.Owner`, a file this writer creates is given to the user
  who ran sudo at once (on the open descriptor); an overwritten file keeps its owner.
- Crash-safe by construction: each record is built whole (header and data in one
  ``bytes``) and handed to the kernel with ``os.write`` as soon as ``flush_every`` packets
  have accumulated (default: every packet). A reader following the file sees whole records,
  and a Ctrl-C or SIGKILL leaves a valid file holding every packet written so far. At
  worst the last record is cut: Linux may return a short ``write()`` to a regular file
  when a fatal signal is pending, so no writer can prevent it. Readers then do what
  tcpdump and tshark do: every whole record is read and the cut one is named in one line
  (``sockcap show``: exit code 4, after every packet is shown).
- Any ``OSError`` becomes a one-line :class:`~sockcap.errors.WriteError`; if a record was
  only partly written (disk full), the file is cut back to the last whole record.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import IO

from sockcap.decode.records import RawFrame
from sockcap.errors import OutputExistsError, WriteError
from sockcap.i18n import _
from sockcap.owner import Owner, create_file
from sockcap.pcapfile.pcap import MAX_RECORD_LEN, pack_file_header, pack_record

FILE_MODE = 0o600


def _record(frame: RawFrame, linktype: int) -> bytes:
    """The record for a frame, data cut to the snap length; WriteError if it cannot be one."""
    if frame.linktype != linktype:
        raise WriteError(_("frame of link type {frame_linktype} in a pcap file of link type {file_linktype}").format(frame_linktype=frame.linktype, file_linktype=linktype))
    try:
        return pack_record(frame.ts_ns, frame.data[:MAX_RECORD_LEN], frame.wirelen)
    except ValueError as exc:
        raise WriteError(str(exc)) from None


def as_stored(frame: RawFrame) -> RawFrame:
    """``frame`` as a pcap file written here gives it back to a reader (built with
    ``tuple.__new__``: ``_replace`` would cost a microsecond a frame of a live capture)."""
    ts, linktype, data, wirelen, interface = frame
    if ts % 1000 or len(data) > MAX_RECORD_LEN or interface:
        return _new_frame(RawFrame, (ts - ts % 1000, linktype, data[:MAX_RECORD_LEN],
                                     wirelen, 0))
    return frame


_new_frame = tuple.__new__


def write_pcap_stream(stream: IO[bytes], frames: Iterable[RawFrame], linktype: int) -> int:
    """Write a whole pcap file (header and frames) to an open binary stream.

    Returns the number of frames written. The stream is flushed but not closed.
    """
    stream.write(pack_file_header(linktype))
    count = 0
    for frame in frames:
        stream.write(_record(frame, linktype))
        count += 1
    stream.flush()
    return count


class PcapWriter:
    """A pcap file being written, one frame at a time.

    ``PcapWriter(path, linktype, force=False, flush_every=1, owner=None)`` creates ``path``
    (mode 0600; WriteError if it exists and ``force`` is false; given to the user who ran
    sudo by ``owner`` if this call created it) and writes the file header.
    """

    def __init__(self, path: str | os.PathLike[str], linktype: int, *, force: bool = False,
                 flush_every: int = 1, owner: Owner | None = None,
                 before_header: Callable[[int], None] | None = None) -> None:
        self.path = os.fspath(path)
        self.linktype = linktype
        self.count = 0  # frames written (the last flush_every - 1 may still be pending)
        self._flush_every = max(1, flush_every)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._size = 0  # bytes the file holds, all whole records
        self._fd = self._create(force, owner)
        if before_header is not None:  # a lock taken before anyone can read a header
            try:
                before_header(self._fd)
            except OSError as exc:
                os.close(self._fd)
                raise self._error(exc) from None
        self._write_out(pack_file_header(linktype))

    def _create(self, force: bool, owner: Owner | None) -> int:
        try:
            fd, created = create_file(self.path, FILE_MODE, replace=force)
        except FileExistsError:
            raise OutputExistsError(_("{path} exists; use --force to overwrite").format(path=self.path)) from None
        except OSError as exc:
            raise self._error(exc) from None
        if created and owner is not None:
            owner.give(fd, self.path)
        try:
            # an overwritten file keeps its old mode otherwise; a device (-w /dev/null) or
            # a FIFO is the system's, and keeps its own
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, FILE_MODE)
        except OSError as exc:
            os.close(fd)
            raise self._error(exc) from None
        return fd

    def _error(self, exc: OSError) -> WriteError:
        return WriteError(_("cannot write {path}: {exc}").format(path=self.path, exc=exc.strerror or exc))

    def _write_out(self, data: bytes) -> None:
        """Hand ``data`` to the kernel whole; on failure cut back to the last good size."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            self._cut_back()
            raise self._error(exc) from None
        self._size += len(data)

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            pass  # the reader will report the last record as cut short

    def write(self, frame: RawFrame) -> RawFrame:
        """Add one frame; it reaches the file now or with the next ``flush_every``.

        Returns the frame as the file holds it, which is what anyone reading the file
        later will see: the time cut to the microsecond (the format's unit), the data to
        the snap length. A live view shows that frame, so the timeline printed during a
        capture and ``sockcap show`` (or Wireshark) on the saved file agree to the digit.
        """
        if self._fd < 0:
            raise WriteError(_("{path} is closed").format(path=self.path))
        record = _record(frame, self.linktype)
        self._pending.append(record)
        self._pending_bytes += len(record)
        self.count += 1
        if len(self._pending) >= self._flush_every:
            self.flush()
        return as_stored(frame)

    def flush(self) -> None:
        """Write every pending frame to the file."""
        if not self._pending:
            return
        data, lost = b"".join(self._pending), len(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        try:
            self._write_out(data)
        except WriteError:
            self.count -= lost
            raise

    @property
    def size(self) -> int:
        """Bytes of the file once the pending frames are written (tcpdump's ``ftell``)."""
        return self._size + self._pending_bytes

    def close(self) -> None:
        """Flush and close; closing twice does nothing."""
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def write_pcap(path: str | os.PathLike[str], frames: Iterable[RawFrame], linktype: int,
               force: bool = False) -> int:
    """Write ``frames`` to a new pcap file at ``path``; returns how many were written."""
    with PcapWriter(path, linktype, force=force, flush_every=1024) as writer:
        for frame in frames:
            writer.write(frame)
        return writer.count
