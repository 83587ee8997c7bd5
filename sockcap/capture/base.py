"""The one small interface every capture backend offers.

A backend is *ready* when :meth:`Capture.start` returns: every packet sent after that is
captured. :meth:`Capture.read` returns what has arrived (blocking up to ``timeout``);
:meth:`Capture.stop` drains nothing by itself: the caller reads until the traffic it
waits for is in, then stops, and gets the kernel's counters.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from sockcap.decode.records import RawFrame


class CaptureStats(NamedTuple):
    """Counters as tcpdump reports them at the end of a capture."""

    captured: int  # packets handed to sockcap
    received: int  # packets the filter accepted (captured + dropped), -1 unknown
    dropped: int  # packets dropped by the kernel for lack of buffer space, -1 unknown


class Capture(Protocol):
    name: str
    linktype: int

    def start(self) -> None: ...

    def fileno(self) -> int: ...

    def read(self, timeout: float) -> list[RawFrame]: ...

    def stop(self) -> CaptureStats: ...
