"""Record one exchange between a server and a client, for a teacher's own tests.

:func:`record_exchange` starts the capture on the port, the server (waits until it
listens), then the client (the user's program fed ``stdin``, or sockcap's own client
sending each line of ``stdin``), waits for the client to end and the connection to close
(bounded), stops both by PID, and returns a :class:`Trace`: the facts of the first
connection (:func:`sockcap.analysis.check.streams.exchange_of`), the timeline, the pcap and what
the programs printed. The programs run in :mod:`sockcap.check.sandbox`'s sandbox (as
root in a network of its own; otherwise on the host's loopback, where the capture is).
The facts are read from the packets up to the end of the exchange alone: packets the
kernel sends once sockcap stops the server (its sockets closing) are left out, and so is
the conversation's state after them, so a server that never closes is not seen closing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sockcap.analysis.check.streams import exchange_of
from sockcap.check.cgroup import Limits, host_root
from sockcap.check.clients import EchoClient
from sockcap.check.programs import Program, ProgramOutput, socket_states, wait_listening
from sockcap.check.sandbox import Sandbox
from sockcap.check.staging import sandbox_for
from sockcap.check.wire import Recorder
from sockcap.errors import EndpointError
from sockcap.i18n import _
from sockcap.pcapfile.writer import as_stored, write_pcap
from sockcap.pipeline import Pipeline
from sockcap.render.timeline import Timeline

START_SECONDS = 3.0
CLOSE_SECONDS = 6.0  # as ``sockcap check``: a server that closes a few seconds late still closes
DEFAULT_LIMITS = Limits()
OPEN_STATES = ("01", "08", "09")  # ESTABLISHED, CLOSE_WAIT, LAST_ACK


@dataclass(frozen=True)
class Trace:
    """What one recorded exchange put on the wire (the first connection)."""

    handshake_completed: bool
    closed_by_fin: bool
    reset: bool
    data_segments: tuple[tuple[int, bool, bytes], ...]  # (packet number, from client, payload)
    replies: tuple[bytes, ...]  # the server's bytes, one entry per reply
    sent: bytes  # everything the client sent, reassembled
    received: bytes  # everything the server sent, reassembled
    timeline: str
    pcap: str | None
    outputs: tuple[ProgramOutput, ...]

    @property
    def echoed_exactly(self) -> bool:
        return bool(self.sent) and self.sent == self.received

    def explain(self) -> str:
        """A summary and the timeline, for an assertion message."""
        facts = (f"handshake completed: {self.handshake_completed}; closed by FIN both ways: "
                 f"{self.closed_by_fin}; reset: {self.reset}; echoed exactly: "
                 f"{self.echoed_exactly}\nsent {self.sent[:200]!r}\nreceived {self.received[:200]!r}")
        where = f"\npcap: {self.pcap}" if self.pcap else ""
        return f"{facts}{where}\n{self.timeline}"

    def __repr__(self) -> str:
        return (f"Trace(handshake_completed={self.handshake_completed}, closed_by_fin="
                f"{self.closed_by_fin}, echoed_exactly={self.echoed_exactly}, "
                f"{len(self.data_segments)} data segments)")


def record_exchange(server: Sequence[str], client: Sequence[str] | None = None,
                    stdin: bytes = b"", *, port: int, cwd: str | None = None,
                    pcap: str | None = None, timeout: float = 5.0,
                    limits: Limits = DEFAULT_LIMITS,
                    close_seconds: float = CLOSE_SECONDS) -> Trace:
    """Run and capture one exchange; see the module docstring."""
    def expand(argv: Sequence[str]) -> list[str]:
        return [a.replace("{port}", str(port)) for a in argv]

    programs = [list(server), *([list(client)] if client else [])]
    folder = contextlib.chdir(cwd) if cwd else contextlib.nullcontext()
    # As root, a network of the sandbox's own; otherwise the host's loopback, where the
    # capture is (the fixture's process cannot enter a user namespace of its own).
    with folder, sandbox_for(programs, limits, network=host_root()) as (box, start_in):
        with box.inside():
            recorder = Recorder(port)
            recorder.start()
        outputs: list[ProgramOutput] = []
        end_ns = 0
        try:
            with box.inside():
                end_ns = _exchange(box, start_in, expand(server), expand(client) if client else None,
                                   stdin, port, timeout, outputs, close_seconds)
        finally:
            frames = [as_stored(f) for f in recorder.stop()]
    if pcap is not None:
        write_pcap(pcap, frames, recorder.linktype, force=True)
    pipeline = Pipeline()
    packets = [a for a in pipeline.packets(frames) if a.packet.ts_ns <= end_ns]
    timeline = Timeline(clock=pipeline)
    ex = exchange_of(packets)
    return Trace(ex.handshake_completed, ex.closed_by_fin, ex.reset, ex.data_segments,
                 ex.replies, ex.sent, ex.received,
                 "\n".join(timeline.line(a) for a in packets), pcap, tuple(outputs))


def _exchange(box: Sandbox, cwd: str, server: list[str], client: list[str] | None,
              stdin: bytes, port: int, timeout: float, outputs: list[ProgramOutput],
              close_seconds: float) -> int:
    """Run the server, then the client (or sockcap's); the time the exchange ended."""
    srv = Program("server", server, cwd=cwd, sandbox=box)
    try:
        if not wait_listening(port, srv, START_SECONDS):
            raise EndpointError(_("{server} did not listen on port {port} within {START_SECONDS:g} s").format(server=server[0], port=port, START_SECONDS=START_SECONDS))
        if client:
            cli = Program("client", client, cwd=cwd, stdin=stdin, sandbox=box)
            cli.wait(timeout)
            outputs.append(cli.stop())
            _wait_closed(port, close_seconds)
        else:  # its finish() has waited for the server's FIN already
            _own_client(port, stdin, timeout, close_seconds)
        return time.time_ns()
    finally:
        outputs.insert(0, srv.stop())


def _own_client(port: int, stdin: bytes, timeout: float, close_seconds: float) -> None:
    c = EchoClient("127.0.0.1", port)
    if c.connect(timeout):
        for line in stdin.splitlines(keepends=True):
            c.exchange(line)
        c.finish(close_seconds)
    c.close()


def _wait_closed(port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(s in OPEN_STATES for s in socket_states(port)):
            return
        time.sleep(0.02)

