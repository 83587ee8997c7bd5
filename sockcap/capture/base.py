"""The one small interface every capture backend offers.

A backend is constructed for one interface, given its filter with :meth:`set_filter`
(an expression, and for backends that can take it, a ready compiled program), then:

- :meth:`open` checks, before any traffic, that capture is permitted (a missing privilege
  stops a run before anything has started);
- :meth:`start` returns when the backend is *ready*: every packet sent after that is
  captured;
- :meth:`read` returns what has arrived (blocking up to ``timeout``); :meth:`fileno` is
  readable when something has;
- :meth:`stop` ends the capture and returns the kernel's counters. It drains nothing by
  itself: the caller reads until the traffic it waits for is in, waiting for
  ``settle_seconds`` of quiet (how late the backend may deliver a packet), then stops, and
  calls :meth:`read` once more for what was still in flight (dumpcap's pipe).
  :class:`sockcap.capture.session.CaptureSession` is that caller, for ``capture`` and
  ``run --capture``.
"""

from __future__ import annotations

from typing import Protocol

from sockcap.capture.bpf import Insn
from sockcap.decode.records import CaptureStats as CaptureStats  # re-exported
from sockcap.decode.records import RawFrame


class Capture(Protocol):
    name: str
    linktype: int
    settle_seconds: float

    def set_filter(self, expr: str, prog: list[Insn] | None = None) -> None: ...

    def open(self) -> None: ...

    def start(self) -> None: ...

    def fileno(self) -> int: ...

    def read(self, timeout: float) -> list[RawFrame]: ...

    def stop(self) -> CaptureStats: ...
