"""A capture written to a series of files, rotated by time and size as tcpdump's
``-G``, ``-C`` and ``-W`` do, each file locked while it is written.

The names are tcpdump's (``MakeFilename`` in tcpdump.c):

- with ``-G SECONDS`` the ``-w`` name is a :func:`time.strftime` pattern, filled with
  the local time each file is opened;
- with ``-C MB`` a new file is opened before a packet would be written to a file already
  over ``MB`` million bytes (so a file ends at a whole record and may pass the size by one
  packet); the files after the first are the name followed by 1, 2, 3...;
- ``-W N`` with ``-C`` makes a ring of N files, numbered 0 .. N-1 with enough leading
  zeros to sort (``out.pcap0`` .. ``out.pcap9`` for ``-W 10``), the oldest overwritten;
  with ``-G`` alone it ends the capture once N files have been written (tcpdump's
  "Maximum file limit reached"); with both it only sets the width of the numbers.

Where sockcap differs, and why:

- ``-G`` rotates on the clock, also when no packet arrives (tcpdump waits for the next
  packet): a finished file reaches ``sockcap export --follow`` on time on a quiet lab
  network. The capture calls :meth:`RotatingWriter.tick` while it waits.
- A file is opened with ``O_EXCL`` like every file sockcap writes; a name already used
  in this capture (a ``-G`` pattern coarser than the period, or the ring coming round) is
  removed first, so a reader that has the old file open keeps reading it whole, and a new
  file is a new inode; a name that existed before the capture needs ``--force``.
- Each file holds an exclusive ``flock`` from before its header is written until it is
  closed; ``sockcap export --follow`` exports only files nobody holds so (the kernel
  releases the lock when the writer dies, SIGKILL included).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from sockcap.decode.records import RawFrame
from sockcap.errors import WriteError
from sockcap.i18n import _
from sockcap.owner import Owner
from sockcap.pcapfile.writer import PcapWriter

MB = 1_000_000  # tcpdump's -C unit: millions of bytes


@dataclass(frozen=True)
class Rotation:
    """tcpdump's ``-G``, ``-C`` and ``-W`` (0: not given)."""

    seconds: float = 0.0
    megabytes: float = 0.0
    files: int = 0

    @property
    def active(self) -> bool:
        return bool(self.seconds or self.megabytes)

    @property
    def digits(self) -> int:
        """tcpdump's ``getWflagChars``: the digits of ``files - 1``."""
        return len(str(self.files - 1)) if self.files > 1 else 0


def file_name(pattern: str, rotation: Rotation, count: int, opened: float) -> str:
    """The name of a file, as tcpdump's ``MakeFilename`` makes it."""
    name = time.strftime(pattern, time.localtime(opened)) if rotation.seconds else pattern
    if not rotation.megabytes or (count == 0 and rotation.digits == 0):
        return name
    return f"{name}{count:0{rotation.digits}d}"


def has_time_fields(pattern: str) -> bool:
    """Whether a ``-G`` pattern changes with the time (else every file has one name)."""
    return "%" in pattern.replace("%%", "")


class RotatingWriter:
    """The files of one capture; :class:`~sockcap.pcapfile.writer.PcapWriter`'s methods.

    ``clock`` (``time.time``) is the wall clock the ``-G`` periods and names follow.
    """

    def __init__(self, pattern: str, linktype: int, rotation: Rotation, *, force: bool = False,
                 owner: Owner | None = None, flush_every: int = 1,
                 clock: Callable[[], float] = time.time) -> None:
        self.pattern = pattern
        self.linktype = linktype
        self.rotation = rotation
        self.owner = owner
        self.flush_every = flush_every
        self.clock = clock
        self.files: list[str] = []  # every file opened, in order
        self.done = False  # -G with -W: the last file is written; the capture ends
        self._force = force
        self._closed_count = 0  # frames in the files already closed
        self._size_count = 0  # -C numbering within the current -G period
        self._periods = 0
        self._opened = clock()
        self._current: PcapWriter | None = self._open(self._opened)

    @property
    def path(self) -> str:
        """The file being written (the last one, once done)."""
        return self.files[-1]

    @property
    def count(self) -> int:
        """Frames written to all the files."""
        current = self._current.count if self._current is not None else 0
        return self._closed_count + current

    def _open(self, now: float) -> PcapWriter:
        name = file_name(self.pattern, self.rotation, self._size_count, now)
        reuse = name in self.files
        if reuse or self._force:
            try:
                os.unlink(name)  # a reader of the old file keeps it; a new inode here
            except FileNotFoundError:
                pass
        writer = PcapWriter(name, self.linktype, force=False, flush_every=self.flush_every,
                            owner=self.owner, before_header=lock_while_written)
        if not reuse:
            self.files.append(name)
        return writer

    def write(self, frame: RawFrame) -> RawFrame:
        """Write one frame (a ``-C`` rotation first if the file is over the size); the
        caller ticks the clock (:meth:`tick`) between batches."""
        if self._current is None:
            raise WriteError(_("{path} is closed").format(path=self.path))
        if self.rotation.megabytes and self._current.size > self.rotation.megabytes * MB:
            self._next_by_size()
        return self._current.write(frame)

    def tick(self) -> None:
        """Start the next ``-G`` period's file if its time has come (or end: ``-W``)."""
        now = self.clock()
        if self.done or not self.rotation.seconds or now - self._opened < self.rotation.seconds:
            return
        if self._current is None:  # closed by the end of the capture
            return
        self._close_current()
        self._periods += 1
        if not self.rotation.megabytes and self.rotation.files and \
                self._periods >= self.rotation.files:
            self.done = True
            return
        self._opened = now
        self._size_count = 0
        self._current = self._open(now)

    def _next_by_size(self) -> None:
        self._close_current()
        self._size_count += 1
        if self.rotation.files and self._size_count >= self.rotation.files:
            self._size_count = 0
        self._current = self._open(self._opened)

    def _close_current(self) -> None:
        current, self._current = self._current, None
        if current is not None:
            current.close()
            self._closed_count += current.count

    def flush(self) -> None:
        if self._current is not None:
            self._current.flush()

    def close(self) -> None:
        """Close the file being written; closing twice does nothing."""
        self._close_current()


def lock_while_written(fd: int) -> None:
    """Hold the file while it is written (see the module docstring). A file system
    without locks (some network ones) writes the file unlocked: the capture goes on."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        pass


def is_being_written(path: str) -> bool:
    """Whether a writer holds ``path``'s lock (a sockcap capture writing it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
