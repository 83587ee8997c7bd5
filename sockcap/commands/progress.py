"""Progress of a long read on a terminal: bytes read of the file's size and packets a
second, shown on stderr with rich once a read has taken about a second, and cleared at
the end. Never in a pipe, never with ``--json``: :class:`Progress` then returns the
frames untouched, so the fast path pays nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator

from sockcap._typing import TypeVar
from sockcap.i18n import _

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import IO, Any, TextIO

T = TypeVar("T")
AFTER_S = 1.0  # a read shorter than this shows no progress
CHECK_EVERY = 4096  # frames between two looks at the clock


def wants_progress(err: TextIO, json_: bool, stdout: TextIO | None = None) -> bool:
    """On a terminal only: stderr is one, and stdout is not the same screen being
    written line by line (``stdout`` given for the commands that stream their output)."""
    if json_ or not (hasattr(err, "isatty") and err.isatty()):
        return False
    return stdout is None or not (hasattr(stdout, "isatty") and stdout.isatty())


class Progress:
    """The progress line of one read: ``tick()`` looks at the clock and the reader's
    count (``packets``); the first look after :data:`AFTER_S` (``SOCKCAP_PROGRESS_AFTER``
    overrides it) shows the line, :meth:`stop` removes it. Ticked from two places, so that
    either engine shows it: :meth:`frames` every :data:`CHECK_EVERY` frames the command's
    loop sees, and the engine loop's ``on_read`` before each read of the file (the
    compiled engine takes most records straight from the reader's buffer, unseen by the
    loop). Disabled, it costs nothing: :meth:`frames` returns the frames untouched."""

    def __init__(self, stream: IO[bytes], err: TextIO, enabled: bool,
                 packets: Callable[[], int]) -> None:
        self.enabled = enabled
        self.err = err
        self.packets = packets
        self.after = float(os.environ.get("SOCKCAP_PROGRESS_AFTER", AFTER_S))
        self.where = _Position(stream) if enabled else None
        self.start = time.monotonic()
        self.bar: _Bar | None = None

    def tick(self) -> None:
        if not self.enabled or self.where is None:
            return
        now = time.monotonic()
        if self.bar is None and now - self.start >= self.after:
            self.bar = _Bar(self.err, self.where.size)
        if self.bar is not None:
            self.bar.update(self.where.offset(), self.packets(), now - self.start)

    def frames(self, frames: Iterable[T]) -> Iterable[T]:
        return self._counted(frames) if self.enabled else frames

    def _counted(self, frames: Iterable[T]) -> Iterator[T]:
        count = 0
        for frame in frames:
            count += 1
            if count % CHECK_EVERY == 0 or (self.bar is None and self.after <= 0):
                self.tick()
            yield frame

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class _Position:
    """Where the reader is in the file (the compressed file for a compressed one)."""

    def __init__(self, stream: IO[bytes]) -> None:
        raw = getattr(stream, "raw_file", stream)
        try:
            self.fd: int | None = raw.fileno()
            self.size: int | None = os.fstat(self.fd).st_size or None
        except (OSError, ValueError, AttributeError):
            self.fd, self.size = None, None

    def offset(self) -> int:
        if self.fd is None:
            return 0
        try:
            return os.lseek(self.fd, 0, os.SEEK_CUR)
        except OSError:  # a pipe
            return 0


class _Bar:
    def __init__(self, err: TextIO, size: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress: Any = Progress(
            TextColumn(_("reading")), BarColumn(), DownloadColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=Console(file=err), transient=True, auto_refresh=False)
        self.task = self.progress.add_task("read", total=size, rate="")
        self.progress.start()

    def update(self, offset: int, packets: int, elapsed: float) -> None:
        rate = _("{rate} packets/s").format(rate=f"{packets / max(elapsed, 1e-9):,.0f}")
        self.progress.update(self.task, completed=offset, rate=rate)
        self.progress.refresh()

    def stop(self) -> None:
        self.progress.stop()
