"""The capture of a check: one small place that talks to the capture backends.

Everything ``sockcap check`` captures goes through :class:`Recorder` (start on ``lo`` with
a kernel filter for the server's port, frames read in a background thread so the ring
never fills while the scenarios run, stop, the frames), so adapting to another capture
session changes this file only.
"""

from __future__ import annotations

import threading

from sockcap.capture.backends import choose_backend
from sockcap.capture.base import Capture, CaptureStats
from sockcap.capture.bpf import port_filter
from sockcap.decode.records import RawFrame

READ_SECONDS = 0.05


class Recorder:
    """Captures TCP and UDP packets to or from one port on lo while a check runs."""

    def __init__(self, port: int, backend: str = "auto") -> None:
        self.port = port
        self.cap: Capture = choose_backend(backend, "lo")  # opened: permission checked
        self.frames: list[RawFrame] = []
        self.stats = CaptureStats(0, -1, -1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def linktype(self) -> int:
        return self.cap.linktype

    def start(self) -> None:
        """Returns once every packet on the port from now on is kept."""
        self.cap.set_filter(f"tcp port {self.port} or udp port {self.port}",
                            port_filter(self.port))
        self.cap.start()
        self._thread = threading.Thread(target=self._pump, name="sockcap-check-capture",
                                        daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._stop.is_set():
            self.frames += self.cap.read(READ_SECONDS)

    def stop(self) -> list[RawFrame]:
        """Waits for the backend's late packets, stops, and returns every frame captured."""
        if self._thread is not None:
            self._stop.wait(max(self.cap.settle_seconds, READ_SECONDS))
            self._stop.set()
            self._thread.join(5.0)
            self._thread = None
            self.stats = self.cap.stop()
            self.frames += self.cap.read(0)
        return self.frames
