"""One lab run: captures at both ends, the TCP echo, then the UDP echo, then the drain.

The order, as in ``sockcap run``: both captures are ready before the first packet; the
echo server is started in the server host and the client runs in the client host (the
thread steps into a host's namespace only to make its sockets); after the exchanges the
captures keep reading until nothing more arrived for a while (the last ACKs of the
teardown, a late retransmission); every frame is written to its end's pcap file as it
arrives, so an interrupt leaves valid files with everything so far. Each end is a
:class:`~sockcap.capture.session.CaptureSession` as every capture of sockcap is (its
file, its batches, its counters), and both are drained by the sessions' one rule
(:func:`~sockcap.capture.session.drain_together`), told how late the link may deliver a
packet (its delay line holds them).

Both protocols send the same messages in the same pattern (a fair race): ``ping-pong``
(the default: send one message, wait for its echo, then the next) or ``stream`` (send
them all, then read the echoes). A UDP client waits for an echo only so long
(:attr:`LabOptions.echo_wait`: a lost datagram is never resent, and waiting longer would
only measure the wait); UDP has no acknowledgments and resends nothing, and the lab shows
how quickly it is done — and what it lost.

The whole run has one deadline (``--timeout``): a TCP that keeps retransmitting (it
would for about 15 minutes) is stopped there, its connection reset, and the lab goes on
to write the captures and say what was delivered so far. When both protocols run, TCP
leaves a quarter of the time to UDP.

Both ends are sockcap's own and record every socket call they make
(:mod:`sockcap.endpoints.recorded`, as ``run --capture``'s endpoints do) into
:attr:`LabResult.calls`. The client's connect() is given as many SYN retransmissions
(``TCP_SYNCNT``) as fit in TCP's share of the time, so that on a link that drops every
packet the kernel itself gives up with ETIMEDOUT, tied to the SYNs it sent, rather than
the lab's deadline cutting the wait short.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sockcap.analysis.calls import Call
from sockcap.analysis.link import CwndSample, Delivery
from sockcap.capture.afpacket import AfPacketCapture
from sockcap.capture.bpf import JEQ_K, LD_H_ABS, RET_K, SNAPLEN, Insn, Op, assemble
from sockcap.capture.kernel import KernelTrace
from sockcap.capture.session import CaptureSession, FrameSink, drain_together
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import LINKTYPE_ETHERNET, RawFrame
from sockcap.endpoints.echo import EchoServer
from sockcap.endpoints.recorded import CallRecorder, RecordedSocket
from sockcap.endpoints.udp_client import UdpEchoClient
from sockcap.errors import EndpointError, WriteError
from sockcap.i18n import _
from sockcap.lab.namespaces import Namespaces
from sockcap.lab.wire import CLIENT_ADDRESS, HOST_IFACE, SERVER_ADDRESS
from sockcap.owner import Owner

RING_BYTES = 16 << 20
QUIET_SECONDS = 0.3  # the captures are drained when nothing arrived for this long
SETTLE_SECONDS = 5.0  # longest drain: the last packets after the exchanges
UDP_WAIT_SECONDS = 0.2  # how long the UDP client waits for an echo on a link with no delay
UDP_SHARE = 0.25  # of the time left, kept for UDP when TCP runs first
HOSTS = ("server", "client")
PATTERNS = ("ping-pong", "stream")
TCP_CONGESTION = getattr(socket, "TCP_CONGESTION", 13)
TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_INFO_BYTES = 104  # up to tcpi_snd_ssthresh and beyond (struct tcp_info, linux/tcp.h)
SAMPLE_SECONDS = 0.002  # how often the client's congestion window is read
MAX_SAMPLES = 100_000  # kept (only changes are kept)
LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # struct linger {on, 0 s}: close sends RST
TCP_SYNCNT = getattr(socket, "TCP_SYNCNT", 7)
MAX_SYNCNT = 6  # the kernel's default tcp_syn_retries: never more than it would send
SYN_RTO_SECONDS = 1.0  # the first SYN's retransmission timeout (RFC 6298 2.1)


@dataclass
class LabOptions:
    messages: tuple[bytes, ...]
    tcp: bool = True
    udp: bool = True
    out_dir: str = "captures"
    force: bool = False
    timeout: float = 60.0  # seconds for the whole run
    delay_ms: float = 0.0  # the link's delay each way (with its jitter)
    transfer_s: float = 0.0  # the time the largest message takes at the link's rate
    pattern: str = "ping-pong"
    cc: str = ""  # the client's congestion control ("": the kernel's default)
    fresh: bool = False  # out_dir is a default name: never reuse it (``-2``, ``-3``, ...)
    kernel: bool = False  # trace the kernel's TCP events of the TCP echo (--kernel)

    @property
    def echo_wait(self) -> float:
        """How long a UDP client waits for one echo: a round trip and TCP's shortest
        retransmission timeout — about what TCP waits before it resends (RTT + 200 ms), so
        that neither client waits longer than the other for a loss."""
        return UDP_WAIT_SECONDS + 2 * self.delay_ms / 1000 + 2 * self.transfer_s


@dataclass
class LabResult:
    frames: dict[str, list[RawFrame]] = field(default_factory=dict)  # by host
    paths: dict[str, str] = field(default_factory=dict)  # pcap file by host
    tcp: Delivery | None = None
    udp: Delivery | None = None
    folder: str = ""  # where the pcap files went
    dropped: int = 0  # frames the captures' rings had no room for
    events: list[KernelEvent] = field(default_factory=list)  # the kernel's, with --kernel
    listen_overflows: int = 0
    calls: list[Call] = field(default_factory=list)  # both ends' socket calls (wall clock)


def ipv4_only() -> list[Insn]:
    """A kernel filter keeping IPv4 frames (no ARP) on an Ethernet interface."""
    return assemble([Op(LD_H_ABS, 12), Op(JEQ_K, 0x0800, jf="reject"), Op(RET_K, SNAPLEN),
                     "reject", Op(RET_K, 0)])


def _open_end(ns: Namespaces, host: str, path: Path, force: bool, owner: Owner,
              on_frames: FrameSink) -> CaptureSession:
    """The capture at one host's ``eth0`` (made and started in the host's namespace: the
    packet socket belongs to the namespace it was made in) and its pcap file."""
    with ns.inside(host):
        cap = AfPacketCapture(HOST_IFACE, ipv4_only(), RING_BYTES, linktype=LINKTYPE_ETHERNET,
                              both_ways=True)
        session = CaptureSession(cap, on_frames, owner)
        session.start()
    try:
        session.open_file(str(path), force=force)
    except BaseException:
        session.finish()  # the capture stops with the error: nothing is left open
        raise
    return session


async def run_lab(ns: Namespaces, opts: LabOptions,
                  on_paths: Callable[[dict[str, str]], None] | None = None,
                  note: Callable[[str], None] | None = None) -> LabResult:
    """Run the lab on the network :func:`sockcap.lab.wire.build` made."""
    owner = Owner(note)
    folder = Path(opts.out_dir)
    try:
        folder = fresh_folder(owner, folder) if opts.fresh else folder
        owner.make_folder(folder)
    except OSError as e:
        raise WriteError(_("cannot create {folder}: {reason}").format(
            folder=folder, reason=e.strerror or e)) from None
    result = LabResult(paths={h: str(folder / f"{h}.pcap") for h in HOSTS}, folder=str(folder))
    recorder = CallRecorder()
    ends: dict[str, CaptureSession] = {}
    frames: dict[str, list[RawFrame]] = {h: [] for h in HOSTS}
    deadline = time.monotonic() + opts.timeout
    try:
        for host in HOSTS:
            ends[host] = _open_end(ns, host, Path(result.paths[host]), opts.force, owner,
                                   frames[host].extend)
            ends[host].watch(asyncio.get_running_loop())
        if on_paths:
            on_paths(result.paths)
        if opts.tcp:
            left = deadline - time.monotonic()
            result.tcp = await _tcp(ns, opts, left * (1 - UDP_SHARE) if opts.udp else left,
                                    result, note, recorder)
        if opts.udp:
            result.udp = await _udp(ns, opts, max(0.0, deadline - time.monotonic()), recorder)
        await drain_together(list(ends.values()), limit=SETTLE_SECONDS,
                             quiet=max(QUIET_SECONDS, 3 * opts.delay_ms / 1000))
    finally:
        for end in ends.values():
            result.dropped += max(0, end.finish().dropped)
        result.calls = list(recorder.calls)
    result.frames = frames
    return result


def fresh_folder(owner: Owner, folder: Path, tries: int = 1000) -> Path:
    """``folder``, or ``folder-2``, ``folder-3``, ...: the first that this run creates
    (``mkdir`` fails on one that exists, so two runs in the same second never share one)."""
    owner.make_folder(folder.parent)
    for n in range(1, tries + 1):
        candidate = folder if n == 1 else folder.with_name(f"{folder.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        owner.give(candidate, candidate)
        return candidate
    raise FileExistsError(folder)


async def _server(ns: Namespaces, udp: bool, recorder: CallRecorder | None = None
                  ) -> EchoServer:
    with ns.inside("server"):
        server = EchoServer(SERVER_ADDRESS, 0, udp=udp, max_message=1 << 20,
                            recorder=recorder)
        await server.start()
    return server


def syn_count(seconds: float) -> int:
    """The most SYN retransmissions whose timeouts (1 s, doubling after each: the last
    one given up 2^(n+1) - 1 s after the first SYN) end within ``seconds``; at least 1.
    The kernel gives up by that time even where ``tcp_syn_linear_timeouts`` spaces the
    first retries 1 s apart (measured on 6.18: TCP_SYNCNT 2 sent 6 SYNs, 1 s apart, and
    connect() failed with ETIMEDOUT 7.1 s after the first)."""
    n = 1
    while n < MAX_SYNCNT and SYN_RTO_SECONDS * (2 ** (n + 2) - 1) <= seconds:
        n += 1
    return n


async def _tcp(ns: Namespaces, opts: LabOptions, seconds: float,
               result: LabResult | None = None,
               note: Callable[[str], None] | None = None,
               recorder: CallRecorder | None = None) -> Delivery:
    """The TCP echo within ``seconds``: what came back, and whether it all did. With
    ``opts.kernel`` the kernel's TCP events on the server's port go to ``result``
    (tracefs is one for the whole machine: the namespaces' sockets are in it too).
    ``recorder``: both ends' socket calls."""
    server = await _server(ns, udp=False, recorder=recorder)
    replies: list[bytes] = []
    finished = False
    trace = (KernelTrace.open([server.port], note or (lambda _t: None))
             if opts.kernel and result is not None else None)
    try:
        with ns.inside("client"):
            sock = (RecordedSocket.create(recorder, "client") if recorder is not None
                    else socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        if opts.cc:
            sock.setsockopt(socket.IPPROTO_TCP, TCP_CONGESTION, opts.cc.encode())
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, TCP_SYNCNT, syn_count(0.8 * seconds))
        sock.setblocking(False)
        samples: list[CwndSample] = []
        sampler = asyncio.create_task(_sample_cwnd(sock, samples))
        try:
            finished = await asyncio.wait_for(
                _tcp_echo(sock, server.port, opts, replies), seconds)
        except (TimeoutError, ConnectionError, OSError):
            finished = False
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            if sock.fileno() >= 0:  # not connected yet (the transport closes it otherwise)
                _reset(sock)
        if finished:
            await server.wait_idle(max(1.0, seconds))
        found = tuple(replies) + (None,) * (len(opts.messages) - len(replies))
        if trace is not None and result is not None:
            result.events = trace.stop()
            result.listen_overflows = trace.overflows
        return Delivery(opts.messages, found, server.stats.bytes, finished, tuple(samples))
    finally:
        if trace is not None:
            trace.close()
        await server.close()


def read_cwnd(sock: socket.socket) -> CwndSample | None:
    """The client's congestion state now (``getsockopt(TCP_INFO)``), stamped with the
    clock the captures use; None once the socket is gone."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, TCP_INFO_BYTES)
    except OSError:
        return None
    if len(info) < 84:
        return None
    # struct tcp_info: u8 state, ca_state, ...; u32 from offset 8; rtt at 68, snd_ssthresh
    # at 76, snd_cwnd at 80 (linux/tcp.h)
    ca_state = info[1]
    rtt_us, _rttvar, ssthresh, cwnd = struct.unpack_from("=4I", info, 68)
    return CwndSample(time.time_ns(), cwnd, ssthresh, rtt_us, ca_state)


async def _sample_cwnd(sock: socket.socket, samples: list[CwndSample]) -> None:
    """Read the client's congestion window every few milliseconds; keep each change."""
    while len(samples) < MAX_SAMPLES:
        sample = read_cwnd(sock)
        if sample is not None and sample.cwnd and (
                not samples or sample[1:3] != samples[-1][1:3]
                or sample.ca_state != samples[-1].ca_state):
            samples.append(sample)
        await asyncio.sleep(SAMPLE_SECONDS)


def _reset(sock: socket.socket) -> None:
    """Close with a reset (``SO_LINGER`` 0 s): the retransmissions end at once."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    sock.close()


async def _tcp_echo(sock: socket.socket, port: int, opts: LabOptions,
                    replies: list[bytes]) -> bool:
    """Connect, send the messages in the pattern, read each echo into ``replies``, then
    close the way TCP should (FIN, the server's FIN); stopped before that (the deadline),
    reset the connection."""
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_connect(sock, (SERVER_ADDRESS, port))
    except BaseException as e:
        if isinstance(sock, RecordedSocket):  # the kernel's error, or the lab's deadline:
            # ECANCELED then, as the lab cancelled the call, not the kernel
            sock.connected(e if isinstance(e, OSError) else OSError(errno.ECANCELED, ""))
        raise
    if isinstance(sock, RecordedSocket):
        sock.connected()
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
    done = False
    try:
        if opts.pattern == "stream":
            writer.write(b"".join(opts.messages))
            await writer.drain()
            for message in opts.messages:
                replies.append(await reader.readexactly(len(message)))
        else:
            for message in opts.messages:
                writer.write(message)
                await writer.drain()
                replies.append(await reader.readexactly(len(message)))
        writer.write_eof()
        await reader.read()  # the server's FIN
        done = True
        return True
    except asyncio.IncompleteReadError:
        return False
    finally:
        if not done:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        writer.transport.abort()


async def _udp(ns: Namespaces, opts: LabOptions, seconds: float,
               recorder: CallRecorder | None = None) -> Delivery:
    """The UDP echo within ``seconds``, by sockcap's one UDP echo client on a socket made
    in the client host; every echo that came back counts, also a late one.
    ``recorder``: both ends' socket calls."""
    server = await _server(ns, udp=True, recorder=recorder)
    deadline = time.monotonic() + seconds
    try:
        with ns.inside("client"):
            sock = (RecordedSocket.create(recorder, "client", type_=socket.SOCK_DGRAM)
                    if recorder is not None else socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        try:
            sock.bind((CLIENT_ADDRESS, 0))
        except OSError:
            sock.close()
            raise
        client = await UdpEchoClient.open(SERVER_ADDRESS, server.port, sock=sock,
                                          timeout=opts.echo_wait, errors=False)
        try:
            if opts.pattern == "stream":
                for message in opts.messages:
                    client.post(message)
                await client.collect(len(opts.messages), opts.echo_wait, deadline)
            else:
                for message in opts.messages:
                    if time.monotonic() >= deadline:
                        break
                    await client.send(message, min(opts.echo_wait, deadline - time.monotonic()))
        finally:
            await client.close()
        finished = time.monotonic() < deadline
        return Delivery(opts.messages, _match(opts.messages, client.received),
                        server.stats.bytes, finished)
    except OSError as e:
        raise EndpointError(_("the lab's UDP echo failed: {reason}").format(
            reason=e.strerror or e)) from None
    finally:
        await server.close()


def _match(messages: tuple[bytes, ...], replies: list[bytes]) -> tuple[bytes | None, ...]:
    """Each message's echo, if it came back (messages are told apart by their bytes)."""
    left = list(replies)
    found: list[bytes | None] = []
    for message in messages:
        if message in left:
            left.remove(message)
            found.append(message)
        else:
            found.append(None)
    return tuple(found)
