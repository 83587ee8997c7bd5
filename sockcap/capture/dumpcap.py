"""Capture through Wireshark's capture engine: dumpcap as a subprocess writing pcapng to a pipe.

Why: dumpcap is the one program a system lets ordinary users capture with (Debian's
``wireshark`` group, or file capabilities on ``/usr/bin/dumpcap``), so sockcap can
capture without running Python as root. sockcap reads the pcapng stream as it arrives
(``open_capture`` on the pipe, in a reader thread) and decodes it like any file.

Readiness: dumpcap prints ``Capturing on 'Loopback: lo'`` *before* it opens the interface,
and ``File: -`` after the interface is open, the filter is set and the output is started;
:meth:`DumpcapCapture.start` returns when the ``File:`` line has come.

Latency and draining: libpcap hands dumpcap a block of packets when it is full or 250 ms
after its first packet (dumpcap has no immediate mode), and on SIGINT dumpcap exits without
reading a block that is not handed over yet. So a caller waits ``settle_seconds`` of quiet
(longer than that timeout) before :meth:`stop`; the packets of the exchange are then in.

Drops: dumpcap reports ``Packets received/dropped on interface '...': R/D`` on stderr as
it exits; those figures are returned as the kernel's counters (received = R + D).

Lifetime: dumpcap is stopped by its PID with SIGINT (so it writes its statistics), killed
if it does not exit within seconds. ``PR_SET_PDEATHSIG`` would not survive the exec of a
binary with file capabilities, so if sockcap itself is killed, dumpcap exits on its next
write to the closed pipe.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Callable
from typing import IO

from sockcap.capture.afpacket import linktype_of, ring_bytes_wanted
from sockcap.capture.bpf import Insn
from sockcap.decode.records import CaptureStats, RawFrame
from sockcap.errors import CaptureError, CapturePermissionError, SockcapError
from sockcap.i18n import _
from sockcap.systools import find_tool

DUMPCAP_ENV = "SOCKCAP_DUMPCAP"  # path of the dumpcap to use (default: the one on PATH)
READY_SECONDS = 10.0
EXIT_SECONDS = 5.0
PROBE_SECONDS = 10.0
_STATS_LINE = re.compile(r"Packets received/dropped on interface .*: (\d+)/(\d+)")
_CAPTURED_LINE = re.compile(r"Packets captured: (\d+)")

PERMISSION_HINT = (
    "run it with sudo, or let dumpcap capture for you: sudo usermod -aG wireshark $USER "
    "(Debian/Ubuntu: sudo dpkg-reconfigure wireshark-common), or "
    "sudo setcap cap_net_raw,cap_net_admin=eip \"$(command -v dumpcap)\""
)


def dumpcap_path() -> str | None:
    """The dumpcap to run: ``$SOCKCAP_DUMPCAP``, else the one on PATH (or /usr/bin)."""
    explicit = os.environ.get(DUMPCAP_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return find_tool("dumpcap")


def dumpcap_may_capture(path: str, iface: str = "lo") -> bool:
    """Whether dumpcap may open ``iface`` for this user: ``dumpcap -L`` opens it and exits."""
    try:
        res = subprocess.run([path, "-L", "-i", iface], capture_output=True, timeout=PROBE_SECONDS,
                             stdin=subprocess.DEVNULL, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def parse_report(lines: list[str]) -> tuple[int, int]:
    """``(received, dropped)`` from dumpcap's closing report; ``(-1, -1)`` when absent."""
    received = dropped = -1
    for line in lines:
        m = _STATS_LINE.search(line)
        if m:
            received = max(received, 0) + int(m.group(1)) + int(m.group(2))
            dropped = max(dropped, 0) + int(m.group(2))
    return received, dropped


class DumpcapCapture:
    """dumpcap writing pcapng to a pipe, decoded here; see the module docstring."""

    name = "dumpcap"
    settle_seconds = 0.4  # longer than libpcap's 250 ms block timeout in dumpcap

    def __init__(self, iface: str = "lo", path: str | None = None) -> None:
        self.iface = iface
        self.path = path or dumpcap_path() or "dumpcap"
        self.filter = ""
        self.linktype = linktype_of(iface)
        self.captured = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._frames: queue.SimpleQueue[RawFrame] = queue.SimpleQueue()
        self._wake_r, self._wake_w = -1, -1
        self._stderr: list[str] = []
        self._ready = threading.Event()
        self._capturing = False  # the "File:" line came: interface open, filter set
        self._threads: list[threading.Thread] = []
        self._error: SockcapError | None = None

    def set_filter(self, expr: str, prog: list[Insn] | None = None) -> None:
        """The capture filter expression; dumpcap compiles it with libpcap."""
        self.filter = expr

    def open(self) -> None:
        """Fail early, before any traffic, if dumpcap may not capture for this user."""
        if not dumpcap_may_capture(self.path, self.iface):
            raise CapturePermissionError(
                _("capturing on {iface} needs root, CAP_NET_RAW, or a dumpcap allowed to capture").format(iface=self.iface), PERMISSION_HINT)

    def start(self) -> None:
        """Start dumpcap and return when it has the interface open with the filter set."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._proc = subprocess.Popen(self._argv(), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._spawn(self._read_stderr, self._proc.stderr)
        if not self._ready.wait(READY_SECONDS) or not self._capturing:
            self.stop()
            raise CaptureError(_("dumpcap did not start capturing: {failure}").format(failure=self._failure()))
        self._spawn(self._read_frames, self._proc.stdout)

    def _argv(self) -> list[str]:
        mib = max(1, ring_bytes_wanted() >> 20)
        argv = [self.path, "-i", self.iface, "-w", "-", "-q", "-B", str(mib)]
        return argv + (["-f", self.filter] if self.filter else [])

    def _spawn(self, target: Callable[[IO[bytes]], None], stream: IO[bytes]) -> None:
        thread = threading.Thread(target=target, args=(stream,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _failure(self) -> str:
        lines = [x for x in self._stderr if x and not x.startswith(("Running as", "Capturing"))]
        return lines[0].removeprefix("dumpcap: ") if lines else "no reason given"

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", "replace").replace("\r", "").strip()
            self._stderr.append(line)
            if line.startswith("File:"):
                self._capturing = True
                self._ready.set()
        self._ready.set()

    def _read_frames(self, stream: IO[bytes]) -> None:
        from sockcap.pcapfile.reader import open_capture

        try:
            for frame in open_capture(stream):
                self._frames.put(frame)
                self.captured += 1
                self._wake()
        except SockcapError as e:
            self._error = e  # a stream cut short when dumpcap is killed
        except (OSError, ValueError):
            pass  # the pipe was closed under the reader by stop()
        finally:
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # a full pipe already says "frames waiting"; a closed one: stopped

    def fileno(self) -> int:
        """Readable when frames are waiting (a pipe the reader thread writes to)."""
        return self._wake_r

    def read(self, timeout: float = 0.0) -> list[RawFrame]:
        """The frames decoded so far; waits up to ``timeout`` seconds for the first."""
        frames: list[RawFrame] = []
        self._clear_wakeups()  # before taking frames: a frame put later wakes again
        try:
            frames.append(self._frames.get(timeout=timeout) if timeout > 0
                          else self._frames.get_nowait())
            while True:
                frames.append(self._frames.get_nowait())
        except queue.Empty:
            pass
        return frames

    def _clear_wakeups(self) -> None:
        try:
            while self._wake_r >= 0 and os.read(self._wake_r, 65536):
                pass
        except BlockingIOError:
            pass

    def stop(self) -> CaptureStats:
        """SIGINT dumpcap, read its stream to the end and its report; ``read`` gets the rest."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            thread.join(EXIT_SECONDS)
        self._close_pipes()
        received, dropped = parse_report(self._stderr)
        return CaptureStats(self.captured, received, dropped)

    def _close_pipes(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._proc is not None:
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
