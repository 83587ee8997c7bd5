"""In-process capture on Linux with a raw AF_PACKET socket and a kernel BPF filter.

Why this mechanism: it needs nothing but the kernel (no libpcap binding), the filter runs
in the kernel so the machine's other traffic never reaches Python, and a large receive
buffer lets a plain ``recvmsg`` loop keep up with loopback rates (measured in bench/).

How it captures each packet exactly once on ``lo``: a packet sent over loopback passes the
packet taps twice, once as it leaves (``PACKET_OUTGOING``) and once as it arrives. The
socket sets ``PACKET_IGNORE_OUTGOING`` (Linux 4.20+) so the kernel delivers only the
arriving copy; on an older kernel the outgoing copies are dropped here by their
``sll_pkttype``. This is the duplicate that scapy's sniffer on ``lo`` keeps.

How it is ready before traffic starts: the socket is created with protocol 0 (it receives
nothing), the filter is attached, and only then is it bound to the interface with
``ETH_P_ALL``; from the moment :meth:`start` returns every matching packet is queued.
"""

from __future__ import annotations

import ctypes
import errno
import select
import socket
import struct

from sockcap.capture.base import CaptureStats
from sockcap.capture.bpf import Insn
from sockcap.decode.records import LINKTYPE_ETHERNET, LINKTYPE_RAW, RawFrame
from sockcap.errors import CaptureError, CapturePermissionError

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
ARPHRD_ETHER, ARPHRD_LOOPBACK, ARPHRD_NONE = 1, 772, 0xFFFE
BUFFER_BYTES = 64 << 20
FRAME_MAX = 262144
_TIMESPEC = struct.Struct("@qq")
_STATS = struct.Struct("@II")

PERMISSION_HINT = (
    "run it with sudo, or let this Python capture: "
    "sudo setcap cap_net_raw,cap_net_admin=eip \"$(readlink -f \"$(command -v python3)\")\""
)


def _attach_filter(sock: socket.socket, prog: list[Insn]) -> None:
    raw = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _linktype_of(iface: str) -> int:
    """The pcap link type of an interface, from its ARPHRD type in sysfs."""
    try:
        with open(f"/sys/class/net/{iface}/type") as f:
            arphrd = int(f.read())
    except OSError as e:
        raise CaptureError(f"no such interface: {iface}", "see 'sockcap interfaces'") from e
    return LINKTYPE_ETHERNET if arphrd in (ARPHRD_ETHER, ARPHRD_LOOPBACK) else LINKTYPE_RAW


class AfPacketCapture:
    """Capture on one interface with a kernel filter; see the module docstring."""

    name = "afpacket"

    def __init__(self, iface: str = "lo", prog: list[Insn] | None = None) -> None:
        self.iface = iface
        self.prog = prog
        self.linktype = _linktype_of(iface)
        self._sock: socket.socket | None = None
        self._userspace_outgoing_filter = False
        self.captured = 0
        self._received = 0
        self._dropped = 0

    def open(self) -> None:
        """Create the packet socket; fails early (before any traffic) without permission."""
        if self._sock is not None:
            return
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as e:
            raise CapturePermissionError(
                f"capturing on {self.iface} needs root or CAP_NET_RAW", PERMISSION_HINT) from e

    def start(self) -> None:
        """Attach the filter and bind: from now on every matching packet is queued."""
        self.open()
        sock = self._sock
        assert sock is not None
        try:
            self._configure(sock)
            sock.bind((self.iface, ETH_P_ALL))
        except OSError as e:
            self.stop()
            raise CaptureError(f"cannot capture on {self.iface}: {e.strerror or e}") from e

    def _configure(self, sock: socket.socket) -> None:
        if self.prog is not None:
            _attach_filter(sock, self.prog)
        try:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        except OSError:
            self._userspace_outgoing_filter = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, BUFFER_BYTES)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUFFER_BYTES)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock else -1

    def read(self, timeout: float = 0.0) -> list[RawFrame]:
        """Everything queued now; waits up to ``timeout`` seconds for the first packet."""
        sock = self._sock
        if sock is None:
            return []
        if timeout > 0:
            select.select([sock], [], [], timeout)
        return self._drain(sock)

    def _drain(self, sock: socket.socket) -> list[RawFrame]:
        frames: list[RawFrame] = []
        linktype = self.linktype
        skip_outgoing = self._userspace_outgoing_filter
        cmsg_space = socket.CMSG_SPACE(_TIMESPEC.size)
        while True:
            try:
                data, anc, msg_flags, addr = sock.recvmsg(FRAME_MAX, cmsg_space)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if skip_outgoing and addr[2] == PACKET_OUTGOING:
                continue
            ts = 0
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = _TIMESPEC.unpack_from(cdata)
                    ts = sec * 1_000_000_000 + nsec
            frames.append(RawFrame(ts, linktype, data, len(data)))
        self.captured += len(frames)
        return frames

    def _read_stats(self) -> None:
        if self._sock is None:
            return
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS.size)
        except OSError as e:
            if e.errno != errno.ENOPROTOOPT:
                raise
            return
        received, dropped = _STATS.unpack(raw)  # the kernel resets them on each read
        self._received += received
        self._dropped += dropped

    def stop(self) -> CaptureStats:
        self._read_stats()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return CaptureStats(self.captured, self._received, self._dropped)


def can_capture() -> bool:
    """Whether this process may open a packet socket (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except OSError:
        return False
    return True


