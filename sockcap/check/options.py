"""What ``sockcap check`` runs with: the scenarios it runs by default, the times each
program is given, the messages it sends, and :class:`CheckOptions`, the one record of a
check's choices (read by :mod:`sockcap.check.runner` and by the scenarios over the lab's
link, :mod:`sockcap.check.lab_scenarios`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sockcap.analysis.check.codes import CLIENT_SCENARIOS, Scenario, ScenarioRun
from sockcap.check.cgroup import Limits
from sockcap.check.programs import ProgramOutput
from sockcap.render.check import signal_name

DEFAULT_MESSAGES = (b"hello from sockcap, a longer first line\n", b"hi\n", b"bye\n")
PARTIAL_MESSAGE = b"one byte per segment\n"
LARGE_BYTES = 100_000
# How long the server has to close after the client's FIN. A course's forked child that
# lingers (a sleep before close, a timer) closes after about 5 s; a server that closes at
# once costs nothing of this, since the wait ends at its FIN.
CLOSE_SECONDS = 6.0
ECHO_REPLY_SECONDS = 2.0  # how long each echo message waits for its reply before the next
START_SECONDS = 3.0  # how long the server has to listen
CLIENT_SECONDS = 5.0  # how long the user's client may run
# How long a student's client has to finish against sockcap's server: the slow echo takes
# about a second for the default messages; a client that waits for ever is stopped here.
CLIENT_CHECK_SECONDS = 8.0
BURST_SECONDS = 2.5  # a burst client's longest wait (a SYN is sent again after 1 s)
TCP_ESTABLISHED = "01"  # /proc/net/tcp's state code
TCP_SCENARIOS = (Scenario.ECHO, Scenario.PARTIAL, Scenario.LARGE, Scenario.CONCURRENT,
                 Scenario.BURST)
UDP_SCENARIOS = (Scenario.ECHO, Scenario.UDP_CLIENTS, Scenario.UDP_LARGE)
UDP_CLIENT_SCENARIOS = (Scenario.UDP_CLIENT_LOSS, Scenario.UDP_CLIENT_DUPLICATES,
                        Scenario.UDP_CLIENT_REORDER)
TCP_CLIENT_SCENARIOS = (Scenario.CLIENT_ECHO, Scenario.CLIENT_SERVER_CLOSES, Scenario.CLIENT_REFUSED)


def default_scenarios(server: bool, client: bool, udp: bool) -> tuple[Scenario, ...]:
    """What ``check`` runs without ``--only``: the server's scenarios (with a client too,
    over TCP, the user's client takes sockcap's place in the echo), or the client's."""
    if udp:
        return (UDP_SCENARIOS if server else ()) + (UDP_CLIENT_SCENARIOS if client else ())
    return TCP_SCENARIOS if server else TCP_CLIENT_SCENARIOS


@dataclass(frozen=True)
class CheckOptions:
    server: tuple[str, ...]  # argv; "{port}" in an argument is replaced by the port; ()
    # when only the client is checked
    client: tuple[str, ...] = ()  # the user's client (argv, "{port}" too), or sockcap's own
    port: int = 5001
    host: str = "127.0.0.1"
    udp: bool = False
    scenarios: tuple[Scenario, ...] = TCP_SCENARIOS
    messages: tuple[bytes, ...] = DEFAULT_MESSAGES
    burst: int = 8
    cwd: str | None = None
    limits: Limits = field(default_factory=Limits)
    backend: str = "auto"
    close_seconds: float = CLOSE_SECONDS
    start_seconds: float = START_SECONDS
    newline: bool = True  # False: every message is sent without its trailing newline
    udp_client_port: int = 0  # UDP: the client's port, captured too (0: chosen by run_check)
    client_seconds: float = CLIENT_CHECK_SECONDS  # the student's client against sockcap's server
    calls: bool = True  # trace the student's programs' socket calls (strace, in the sandbox)
    kernel: bool = False  # the kernel's TCP events too (tracefs: root only)

    def trace(self, side: str) -> str:
        """The side a program's calls are recorded as, or "" (not traced)."""
        return side if self.calls else ""

    @property
    def pair(self) -> bool:
        """The user's client talks to the user's server in the echo scenario (``--server``
        with ``--client`` and no client check): otherwise each is checked against
        sockcap's own counterpart, which is what makes a finding precise."""
        return bool(self.client) and not any(s in CLIENT_SCENARIOS for s in self.scenarios)


def without_newline(message: bytes) -> bytes:
    return message[:-1] if message.endswith(b"\n") else message


def probe(opts: CheckOptions, message: bytes) -> bytes:
    """``message`` as the client sends it: with its newline, or without (``--no-newline``,
    as a course's client that sends what the user typed and nothing more)."""
    return message if opts.newline else without_newline(message)


def probe_messages(opts: CheckOptions) -> tuple[bytes, ...]:
    return tuple(probe(opts, m) for m in opts.messages)


def expand(argv: Sequence[str], port: int, host: str = "127.0.0.1") -> tuple[str, ...]:
    """``{port}`` and ``{host}`` (the server's address: 10.0.0.1 over the lab's link)."""
    return tuple(arg.replace("{port}", str(port)).replace("{host}", host) for arg in argv)


def not_listening_run(opts: CheckOptions, scenario: Scenario, start: int,
                       output: ProgramOutput) -> ScenarioRun:
    """What a server that never listened did instead, for the one finding that says so."""
    limits = opts.limits
    return ScenarioRun(scenario, start, time.time_ns(), listening=False, port=opts.port,
                       exit_status=None if output.stopped else output.status,
                       limit=str(output.limit or ""), start_seconds=opts.start_seconds,
                       values={"signal": signal_name(-(output.status or 0)),
                               "file_mb": limits.file_mb, "memory_mb": limits.memory_mb,
                               "cpu_seconds": limits.cpu_seconds})
