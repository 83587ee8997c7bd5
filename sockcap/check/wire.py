"""The capture of a check: one small place that talks to the capture session.

Everything ``sockcap check`` captures goes through :class:`Recorder`, a
:class:`~sockcap.capture.session.CaptureSession` on ``lo`` with a kernel filter for the
server's port (the same session as ``capture`` and ``run --capture``): frames are read in
a background thread so the ring never fills while the scenarios run; at the end the
thread stops and the session's drain rule takes the backend's late packets (quiet for its
``settle_seconds``, bounded) before the backend is stopped. No file is written here: the
check writes what it keeps.
"""

from __future__ import annotations

import threading

from sockcap.capture.bpf import port_filter
from sockcap.capture.session import CaptureSession
from sockcap.decode.records import CaptureStats, RawFrame
from sockcap.owner import Owner

READ_SECONDS = 0.05


class Recorder:
    """Captures TCP and UDP packets to or from one port on lo while a check runs (and, for
    a UDP check, the client's port: TCP there too, which is harmless)."""

    def __init__(self, port: int, backend: str = "auto", extra_udp_port: int = 0) -> None:
        self.port = port
        self.extra_udp_port = extra_udp_port  # a UDP client's own port (replies from elsewhere)
        self.frames: list[RawFrame] = []
        self.session = CaptureSession.open(backend, "lo", self.frames.extend, Owner())
        self.stats = CaptureStats(0, -1, -1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def linktype(self) -> int:
        return self.session.cap.linktype

    def start(self) -> None:
        """Returns once every packet on the port from now on is kept."""
        expr = f"tcp port {self.port} or udp port {self.port}"
        if self.extra_udp_port:
            expr = f"(tcp or udp) and (port {self.port} or port {self.extra_udp_port})"
        self.session.set_filter(expr, port_filter(self.port, self.extra_udp_port))
        self.session.start()
        self._thread = threading.Thread(target=self._pump, name="sockcap-check-capture",
                                        daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while not self._stop.is_set():
            self.session.read(READ_SECONDS)

    def stop(self) -> list[RawFrame]:
        """Takes the backend's late packets (the session's drain), stops, and returns every
        frame captured."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5.0)
            self._thread = None
            try:
                self.session.drain()
            finally:
                self.stats = self.session.finish()
        return self.frames
