"""SIGTERM handled like Ctrl-C: the ``finally`` blocks run, files are finished."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

from sockcap.errors import ExitCode, SockcapError

T = TypeVar("T")


class Terminated(SockcapError):
    exit_code = ExitCode.TERMINATED


class Stopped(SockcapError):
    """A run stopped by SIGINT or SIGTERM, with what was kept (exit code 130 or 143)."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.exit_code = code


def exit_code_for(signum: int) -> ExitCode:
    """The exit code of a command stopped cleanly by ``signum``: 130 (SIGINT), 143 (SIGTERM)."""
    return ExitCode.INTERRUPTED if signum == signal.SIGINT else ExitCode.TERMINATED


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated("terminated")


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated`, and SIGINT raises ``KeyboardInterrupt`` even when
    the process was started with SIGINT ignored (a shell's background job or a script's
    ``nohup``: Python then leaves the inherited ``SIG_IGN`` in place)."""
    previous = signal.signal(signal.SIGTERM, _raise)
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


RECANCEL_SECONDS = 0.2


async def cancel_on_signals(work: Coroutine[Any, Any, T], seen: list[int]) -> T:
    """SIGINT and SIGTERM cancel the task running ``work``: every ``finally`` then
    finishes its file; ``seen`` gets the signal numbers.

    Handled by the event loop rather than by raising from a signal handler, which could
    land inside any callback (a capture's reader among them) and print a traceback.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop(signum: int) -> None:
        seen.append(signum)
        cancel()

    def cancel() -> None:
        """Cancel the task, and again every RECANCEL_SECONDS until it ends: Python 3.11's
        ``asyncio.wait_for`` loses a cancel that comes as the awaited read completes, and
        the work would go on to its end (minutes, for a long exchange)."""
        if not task.done():
            task.cancel()
            loop.call_later(RECANCEL_SECONDS, cancel)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await work
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
