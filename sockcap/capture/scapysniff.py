"""Capture through scapy's listening socket: the fallback where the other backends are missing.

scapy picks the platform's mechanism (``conf.L2listen``: a packet socket on Linux, BPF
devices or libpcap elsewhere) and compiles the filter with libpcap, so this backend runs
where neither the in-process ring nor dumpcap does. It is much slower (scapy's ``sniff``
kept 5-14k packets/s on loopback in bench/), which is why it is the last choice.

Each packet exactly once on ``lo``: scapy's listening socket also receives the outgoing
copy of every loopback packet (``sniff`` on ``lo`` shows each one twice). On Linux this
backend reads the socket itself and drops the copies whose ``sll_pkttype`` is
``PACKET_OUTGOING``; it also raises the receive buffer from scapy's 64 KiB, and reads the
kernel's drop counter at stop. Readiness: scapy attaches the filter and binds in the
constructor, so the socket is capturing when :meth:`ScapyCapture.start` returns.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from typing import Any

from sockcap.capture.afpacket import linktype_of, ring_bytes_wanted
from sockcap.capture.bpf import Insn
from sockcap.decode.records import LINKTYPE_ETHERNET, CaptureStats, RawFrame
from sockcap.errors import CaptureError, CapturePermissionError
from sockcap.i18n import _

PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
SO_RCVBUFFORCE = 33
MTU = 262144
MAX_PER_READ = 4096
_STATS = struct.Struct("=II")


def _linktype_guess(iface: str) -> int:
    """Linux: from sysfs; elsewhere the socket says it at start (Ethernet until then)."""
    try:
        return linktype_of(iface)
    except CaptureError:
        return LINKTYPE_ETHERNET


class ScapyCapture:
    """scapy's ``conf.L2listen`` socket, outgoing loopback copies removed."""

    name = "scapy"
    settle_seconds = 0.1

    def __init__(self, iface: str = "lo") -> None:
        self.iface = iface
        self.filter = ""
        self.linktype = _linktype_guess(iface)
        self.captured = 0
        self._sock: Any = None

    def set_filter(self, expr: str, prog: list[Insn] | None = None) -> None:
        self.filter = expr

    def open(self) -> None:
        """Import scapy early so a missing scapy is reported before any traffic."""
        try:
            import scapy.config  # noqa: F401
        except ImportError as e:
            raise CaptureError(_("the scapy backend needs scapy"), "pip install scapy") from e

    def start(self) -> None:
        import scapy.arch  # sets conf.L2listen for this platform
        import scapy.layers.l2  # noqa: F401  (the link layers behind conf.l2types)
        from scapy.config import conf

        try:
            self._sock = conf.L2listen(iface=self.iface, filter=self.filter or None)
        except PermissionError as e:
            raise CapturePermissionError(_("capturing on {iface} needs root or CAP_NET_RAW").format(iface=self.iface),
                                         "run it with sudo") from e
        except Exception as e:  # scapy raises its own exception types for a bad filter
            raise CaptureError(_("scapy cannot capture on {iface}: {e}").format(iface=self.iface, e=e)) from e
        self.linktype = conf.l2types.layer2num.get(self._sock.LL, self.linktype)
        raw = self._raw_socket()
        if raw is not None:
            for level, option, value in ((socket.SOL_SOCKET, SO_RCVBUFFORCE, ring_bytes_wanted()),
                                         (SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)):
                try:
                    raw.setsockopt(level, option, value)
                except OSError:
                    pass  # an older kernel: the copies are dropped by pkttype below
            raw.setblocking(False)
            self._kernel_counts(raw)  # scapy's socket saw every interface before its filter

    def _raw_socket(self) -> socket.socket | None:
        """The Linux packet socket under scapy's socket, if that is what it is."""
        ins = getattr(self._sock, "ins", None)
        return ins if isinstance(ins, socket.socket) and ins.family == socket.AF_PACKET else None

    def fileno(self) -> int:
        return int(self._sock.fileno()) if self._sock is not None else -1

    def read(self, timeout: float = 0.0) -> list[RawFrame]:
        if self._sock is None:
            return []
        if timeout > 0:
            select.select([self._sock], [], [], timeout)
        raw = self._raw_socket()
        frames = self._read_linux(raw) if raw is not None else self._read_portable()
        self.captured += len(frames)
        return frames

    def _read_linux(self, raw: socket.socket) -> list[RawFrame]:
        frames: list[RawFrame] = []
        while len(frames) < MAX_PER_READ:
            try:
                data, sa_ll, ts = self._sock._recv_raw(raw, MTU)
            except (BlockingIOError, InterruptedError):
                break
            if sa_ll[2] == PACKET_OUTGOING:
                continue
            ns = int(ts * 1e9) if ts else time.time_ns()
            frames.append(RawFrame(ns, self.linktype, data, len(data)))
        return frames

    def _read_portable(self) -> list[RawFrame]:
        frames: list[RawFrame] = []
        while len(frames) < MAX_PER_READ and select.select([self._sock], [], [], 0)[0]:
            _cls, data, ts = self._sock.recv_raw(MTU)
            if data:
                ns = int(ts * 1e9) if ts else time.time_ns()
                frames.append(RawFrame(ns, self.linktype, data, len(data)))
        return frames

    def _kernel_counts(self, raw: socket.socket) -> tuple[int, int]:
        """``(received, dropped)`` since the last call (the kernel resets them on each read)."""
        try:
            got = _STATS.unpack(raw.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size))
        except OSError:
            return -1, -1
        return int(got[0]), int(got[1])

    def stop(self) -> CaptureStats:
        if self._sock is None:
            return CaptureStats(self.captured, -1, -1)
        raw = self._raw_socket()
        received, dropped = self._kernel_counts(raw) if raw is not None else (-1, -1)
        self._sock.close()
        self._sock = None
        return CaptureStats(self.captured, received, dropped)
