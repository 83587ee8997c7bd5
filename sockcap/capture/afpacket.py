"""In-process capture on Linux: a raw AF_PACKET socket, a kernel BPF filter, a TPACKET_V3 ring.

Why this mechanism: it needs nothing but the kernel (no libpcap binding), the filter runs
in the kernel so the machine's other traffic never reaches Python, and the packets land
in a memory ring shared with the kernel (``PACKET_RX_RING``, ``TPACKET_V3``), the way
libpcap captures for tcpdump and dumpcap.

Why a ring and not a ``recvmsg`` loop (measured in bench/CAPTURE_RESULTS.md): a packet
socket queues a clone of every packet's buffer (about 1 KiB of kernel memory for a 64-byte
datagram) and costs Python one system call per packet. At 200k packets/s on loopback the
``recvmsg`` loop spent ~4.5 us of CPU per packet, slowed the sender to a third, and at
full speed dropped ~80 % while tcpdump dropped nothing. The ring copies each packet once
into blocks of ~100 bytes per small packet, and Python walks a whole block (hundreds of
packets) per wake-up with no system call per packet, so sockcap loses nothing wherever
tcpdump loses nothing.

How it captures each packet exactly once on ``lo``: a packet sent over loopback passes the
packet taps twice, once as it leaves (``PACKET_OUTGOING``) and once as it arrives. The
socket sets ``PACKET_IGNORE_OUTGOING`` (Linux 4.20+) so the kernel delivers only the
arriving copy; on an older kernel the outgoing copies are dropped here by the
``sll_pkttype`` the ring stores next to each packet. This is the duplicate that scapy's
sniffer on ``lo`` keeps.

How it is ready before traffic starts: the socket is created with protocol 0 (it receives
nothing), the filter, the ring and the options are set, and only then is it bound to the
interface with ``ETH_P_ALL``; from the moment :meth:`start` returns every matching packet
is queued. A block is handed to sockcap when it is full or ``BLOCK_TIMEOUT_MS`` after its
first packet, so a lone packet shows up within a few milliseconds.

Drops: when every block is still being read, the kernel drops the packet and counts it;
``PACKET_STATISTICS`` gives the counts at :meth:`stop` (packets the filter accepted, and
those dropped), as tcpdump reports them.

The stop loses nothing the kernel accepted: :meth:`stop` reads the counters first (that
is the stop moment: the kernel counts a packet as it puts it in the ring, so the ring's
first ``accepted - dropped - read`` packets are exactly those before it), then reads the
ring up to them, waiting for the kernel to hand over the block it was filling (at most
``BLOCK_TIMEOUT_MS`` later), and keeps them for the next :meth:`read`. Packets that
arrived after the stop moment are neither counted nor kept. If the counted packets cannot
all be read within ``STOP_READ_SECONDS``, the counters say how many were not
(``received - dropped - captured``).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import select
import socket
import struct
import time

from sockcap.capture.bpf import Insn
from sockcap.decode.records import LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureStats, RawFrame
from sockcap.errors import CaptureError, CapturePermissionError, NoSuchInterfaceError
from sockcap.i18n import _

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
PACKET_IGNORE_OUTGOING = 23
TPACKET_V3 = 2
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = 26
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
RING_BYTES = 64 << 20  # kernel memory for the ring: ~600k small packets of backlog
BLOCK_BYTES = 256 << 10
FRAME_BYTES = 2048  # only the kernel's sanity checks use it: V3 packs packets tightly
BLOCK_TIMEOUT_MS = 20
STOP_READ_SECONDS = 1.0  # longest the stop waits for the ring's last counted packets
MAX_BLOCKS_PER_READ = 64  # bounds the latency of one read() under a flood
BUFFER_ENV = "SOCKCAP_CAPTURE_BUFFER"  # ring bytes, for tests that provoke drops

# struct tpacket_req3; struct tpacket_block_desc (hdr.bh1 from offset 8); tpacket3_hdr
_REQ3 = struct.Struct("=7I")
_BLOCK_STATUS = struct.Struct("=I")
_BLOCK_HEAD = struct.Struct("=II")  # num_pkts, offset_to_first_pkt (at offset 12)
_PKT = struct.Struct("=IIIIIIHH")  # next_offset, sec, nsec, snaplen, len, status, mac, net
_SLL_PKTTYPE = 48 + 10  # sockaddr_ll follows the 48-byte aligned header; pkttype at +10
_STATS_V3 = struct.Struct("=III")  # tp_packets, tp_drops, tp_freeze_q_cnt
_new = tuple.__new__  # builds a RawFrame without the NamedTuple __new__ call

PERMISSION_HINT = (
    "run it with sudo, or let this Python capture: "
    "sudo setcap cap_net_raw,cap_net_admin=eip \"$(readlink -f \"$(command -v python3)\")\""
)


def attach_filter(sock: socket.socket, prog: list[Insn]) -> None:
    """Attach a classic BPF program (SO_ATTACH_FILTER copies it into the kernel)."""
    raw = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def linktype_of(iface: str) -> int:
    """The pcap link type of an interface, from its ARPHRD type in sysfs."""
    try:
        with open(f"/sys/class/net/{iface}/type") as f:
            arphrd = int(f.read())
    except (OSError, ValueError) as e:
        raise NoSuchInterfaceError(_("no such interface: {iface}").format(iface=iface), "see 'sockcap interfaces'") from e
    return LINKTYPE_ETHERNET if arphrd in (ARPHRD_ETHER, ARPHRD_LOOPBACK) else LINKTYPE_RAW


def ring_geometry(ring_bytes: int) -> tuple[int, int]:
    """``(block_bytes, blocks)`` for a ring of about ``ring_bytes`` (at least two pages)."""
    page = mmap.PAGESIZE
    block = BLOCK_BYTES
    while block > page and block * 4 > ring_bytes:
        block //= 2
    return block, max(2, ring_bytes // block)


def ring_bytes_wanted() -> int:
    """The ring size: ``RING_BYTES`` unless ``SOCKCAP_CAPTURE_BUFFER`` says otherwise."""
    value = os.environ.get(BUFFER_ENV, "")
    return int(value) if value.isdigit() else RING_BYTES


class AfPacketCapture:
    """Capture on one interface with a kernel filter and a TPACKET_V3 ring."""

    name = "afpacket"
    settle_seconds = 0.1  # a block is handed over BLOCK_TIMEOUT_MS after its first packet

    def __init__(self, iface: str = "lo", prog: list[Insn] | None = None,
                 ring_bytes: int | None = None, *, linktype: int | None = None,
                 both_ways: bool = False) -> None:
        """``linktype``: given where sysfs shows another network namespace than the
        socket's (the lab's hosts); ``both_ways``: keep the packets this host sends as well
        as those it receives (on ``lo`` each packet would then be seen twice)."""
        self.iface = iface
        self.prog = prog
        self.filter = ""
        self.linktype = linktype_of(iface) if linktype is None else linktype
        self.both_ways = both_ways
        self.ring_bytes = ring_bytes or ring_bytes_wanted()
        self._sock: socket.socket | None = None
        self._ring: mmap.mmap | None = None
        self._block = 0
        self._blocks = 0
        self._next = 0  # the block the kernel fills next, in ring order
        self._skip_outgoing = False
        self.captured = 0
        self._received = 0
        self._dropped = 0
        self._walked = 0  # packets taken from the ring (outgoing copies skipped included)
        self._tail: list[RawFrame] = []  # read at the stop, handed on by the next read()

    def set_filter(self, expr: str, prog: list[Insn] | None = None) -> None:
        """The capture filter: a compiled program, or an expression compiled here by libpcap."""
        if prog is None and expr:
            from sockcap.capture.filters import compile_filter

            prog = compile_filter(expr, self.linktype)
        self.filter = expr
        self.prog = prog

    def open(self) -> None:
        """Create the packet socket; fails early (before any traffic) without permission."""
        if self._sock is not None:
            return
        try:
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError as e:
            raise CapturePermissionError(
                _("capturing on {iface} needs root or CAP_NET_RAW").format(iface=self.iface), PERMISSION_HINT) from e

    def start(self) -> None:
        """Set the filter and the ring, then bind: from now on every matching packet is kept."""
        self.open()
        sock = self._sock
        assert sock is not None
        try:
            self._configure(sock)
            sock.bind((self.iface, ETH_P_ALL))
        except OSError as e:
            self.stop()
            raise CaptureError(_("cannot capture on {iface}: {e}").format(iface=self.iface, e=e.strerror or e)) from e

    def _configure(self, sock: socket.socket) -> None:
        if self.prog is not None:
            attach_filter(sock, self.prog)
        if not self.both_ways:
            try:
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            except OSError:
                self._skip_outgoing = True
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        self._block, self._blocks = ring_geometry(self.ring_bytes)
        frames = self._block // FRAME_BYTES or 1
        frame = FRAME_BYTES if self._block >= FRAME_BYTES else self._block
        req = _REQ3.pack(self._block, self._blocks, frame, frames * self._blocks,
                         BLOCK_TIMEOUT_MS, 0, 0)
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        self._ring = mmap.mmap(sock.fileno(), self._block * self._blocks,
                               mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock else -1

    def read(self, timeout: float = 0.0) -> list[RawFrame]:
        """Everything in the ring now; waits up to ``timeout`` seconds for the first block."""
        ring = self._ring
        if ring is None or self._sock is None:
            tail, self._tail = self._tail, []
            return tail
        frames: list[RawFrame] = []
        if not self._read_blocks(ring, frames) and timeout > 0:
            select.select([self._sock], [], [], timeout)
            self._read_blocks(ring, frames)
        self.captured += len(frames)
        return frames

    def _read_blocks(self, ring: mmap.mmap, frames: list[RawFrame]) -> int:
        """Take every block the kernel has handed over: copy it, give it back, then parse.

        Copying the whole block first (one memcpy) returns it to the kernel at once, and
        parsing a ``bytes`` object is faster than parsing the mapping.
        """
        done = 0
        while done < MAX_BLOCKS_PER_READ:
            base = self._next * self._block
            if not _BLOCK_STATUS.unpack_from(ring, base + 8)[0] & TP_STATUS_USER:
                break
            block = ring[base:base + self._block]
            _BLOCK_STATUS.pack_into(ring, base + 8, TP_STATUS_KERNEL)
            self._next = (self._next + 1) % self._blocks
            self._walk_block(block, frames)
            done += 1
        return done

    def _walk_block(self, block: bytes, frames: list[RawFrame]) -> None:
        count, pos = _BLOCK_HEAD.unpack_from(block, 12)
        self._walked += count
        unpack, linktype, append = _PKT.unpack_from, self.linktype, frames.append
        skip_outgoing = self._skip_outgoing
        for _frame in range(count):
            step, sec, nsec, snaplen, wirelen, _status, mac, _net = unpack(block, pos)
            if not (skip_outgoing and block[pos + _SLL_PKTTYPE] == PACKET_OUTGOING):
                start = pos + mac
                append(_new(RawFrame, (sec * 1_000_000_000 + nsec, linktype,
                                       block[start:start + snaplen], wirelen, 0)))
            pos += step

    def _read_stats(self) -> None:
        if self._sock is None:
            return
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS_V3.size)
        except OSError as e:
            if e.errno != errno.ENOPROTOOPT:
                raise
            return
        received, dropped = _STATS_V3.unpack(raw.ljust(_STATS_V3.size, b"\0"))[:2]
        self._received += received  # the kernel resets its counters on each read
        self._dropped += dropped

    def _take_accepted(self, ring: mmap.mmap, sock: socket.socket) -> None:
        """Read the ring up to the packets counted by the last :meth:`_read_stats` (the stop
        moment) and keep them for the next :meth:`read`; later packets are left out."""
        wanted = self._received - self._dropped - self._walked
        frames: list[RawFrame] = []
        start = self._walked
        deadline = time.monotonic() + STOP_READ_SECONDS
        while self._walked - start < wanted and (left := deadline - time.monotonic()) > 0:
            if not self._read_blocks(ring, frames):
                # the block being filled is handed over BLOCK_TIMEOUT_MS after its first packet
                select.select([sock], [], [], min(left, 2 * BLOCK_TIMEOUT_MS / 1000))
        extra = self._walked - start - wanted  # arrived after the stop moment
        if extra > 0:
            del frames[max(0, len(frames) - extra):]
            self._walked -= extra
        self.captured += len(frames)
        self._tail = frames

    def stop(self) -> CaptureStats:
        """Read what the kernel accepted up to now, close the socket and the ring; the
        counters say what the kernel accepted and dropped (see the module docstring)."""
        self._read_stats()
        if self._ring is not None and self._sock is not None:
            self._take_accepted(self._ring, self._sock)
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return CaptureStats(self.captured, self._received, self._dropped)


def can_capture() -> bool:
    """Whether this process may open a packet socket (root or CAP_NET_RAW)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except (OSError, AttributeError):  # AttributeError: not Linux, no AF_PACKET
        return False
    return True
