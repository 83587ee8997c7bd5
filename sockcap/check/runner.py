"""``sockcap check``: run the server (and client) under test through each scenario, captured.

Every program runs in the submission's sandbox (:mod:`sockcap.check.sandbox`). The order,
for every scenario: a fresh network namespace with only ``lo`` (so no TIME_WAIT socket of
the previous scenario holds the port, and a server with a fixed port binds it every time),
a capture in it, the port checked free, the server started (fresh, so one scenario's stuck
child cannot spoil the next), a wait until it listens (read from /proc, no probe
connection) and a check that the listening socket is the server's own (otherwise the
verdict would be about another program), the exchange with sockcap's own client (or the
user's client for the plain echo), a watch of what the server does after the client's
FIN (its CLOSE_WAIT sockets, its processes' CPU time), the scenario's time span noted,
and the server stopped (its PID namespace with it). The scenarios' captures follow one
another in time, so together they are one pcap file and the packet numbers of every
finding are its numbers. The judging is pure (:func:`sockcap.analysis.check.judge.judge_scenario`);
packets after a scenario's end (the kernel closing a stopped server's sockets) are not
held against it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import string
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sockcap.analysis.calls import Call
from sockcap.analysis.check.calls import tied_calls, tied_events
from sockcap.analysis.check.codes import (
    CLIENT_SCENARIOS,
    LAB_SCENARIOS,
    Scenario,
    ScenarioRun,
    Verdict,
)
from sockcap.analysis.check.judge import judge_scenario
from sockcap.analysis.conversation import Annotated
from sockcap.capture.kernel import KernelTrace, listen_overflows
from sockcap.check.clients import REPLY_SECONDS, EchoClient, free_udp_port
from sockcap.check.lab_scenarios import lab_scenario
from sockcap.check.options import (
    BURST_SECONDS,
    CLIENT_SECONDS,
    ECHO_REPLY_SECONDS,
    LARGE_BYTES,
    PARTIAL_MESSAGE,
    TCP_ESTABLISHED,
    CheckOptions,
    expand,
    not_listening_run,
    probe,
    probe_messages,
    without_newline,
)
from sockcap.check.programs import (
    TCP_CLOSE_WAIT,
    PortHeldError,
    Program,
    ProgramOutput,
    close_wait_count,
    port_holders,
    socket_states,
    wait_listening,
)
from sockcap.check.sandbox import Sandbox
from sockcap.check.servers import OwnServer, ServerMode
from sockcap.check.wire import Recorder
from sockcap.decode.ftrace import KernelEvent
from sockcap.decode.records import CaptureStats, RawFrame
from sockcap.endpoints.udp_client import udp_echoes
from sockcap.i18n import _
from sockcap.pipeline import Pipeline


@dataclass
class CheckResult:
    runs: list[ScenarioRun]
    verdicts: list[Verdict]
    packets: list[Annotated]
    first_ts: int
    outputs: list[ProgramOutput]
    frames: list[RawFrame]
    linktype: int
    stats: CaptureStats
    pipeline: Pipeline | None = None  # its conversations and clock (the HTML report's)
    calls: list[Call] = field(default_factory=list)  # the programs' calls, tied to the packets
    events: list[KernelEvent] = field(default_factory=list)  # the kernel's (--kernel), tied


def run_check(opts: CheckOptions, note: Callable[[str], None] = lambda _: None,
              sandbox: Sandbox | None = None) -> CheckResult:
    """Run every scenario, each in a fresh network namespace of the sandbox with a capture
    of its own (one after the other, so their frames make one capture in time order);
    judge them. Without a ``sandbox``, one is made over ``opts.cwd`` (the user's own
    folder, mounted as it is) and removed at the end.

    A server that does not listen in the first scenario it is started for is not started
    again: the result is one finding on what it did instead (the client's scenarios, with
    sockcap's own server, still run)."""
    if sandbox is None:
        with Sandbox(Path(opts.cwd or "."), opts.limits, own_folder=False, note=note) as box:
            return run_check(opts, note, box)
    scenarios = opts.scenarios
    if opts.udp and not opts.udp_client_port:
        opts = dataclasses.replace(opts, udp_client_port=free_udp_port(opts.host, opts.port))
    outputs: list[ProgramOutput] = []
    if opts.calls and sandbox.tracing():
        note(sandbox.tracing())
        opts = dataclasses.replace(opts, calls=False)
    trace = _kernel_trace(opts, note)
    try:
        runs, frames, linktype, stats = _run_scenarios(opts, scenarios, outputs, sandbox, note)
    except BaseException:
        if trace is not None:
            trace.close()
        raise
    events = trace.stop() if trace is not None else []
    from sockcap.pcapfile.writer import as_stored

    frames = [as_stored(f) for f in frames]
    pipeline = Pipeline()
    packets = list(pipeline.packets(frames))
    verdicts = [v for run in runs for v in judge_scenario(packets, run)]
    return CheckResult(runs, verdicts, packets, pipeline.first_ts, outputs, frames,
                       linktype, stats, pipeline, tied_calls(packets, runs),
                       tied_events(packets, runs, events))


def _kernel_trace(opts: CheckOptions, note: Callable[[str], None]) -> KernelTrace | None:
    """``--kernel``: one tracefs instance for the whole check, filtered to its ports (the
    tracepoints fire in every network namespace; each scenario's events are told apart
    by time and by their sockets' ends). Without permission: None, said in one line."""
    if not opts.kernel:
        return None
    from sockcap.capture.kernel import KernelTrace

    ports = [opts.port, *([opts.udp_client_port] if opts.udp else [])]
    return KernelTrace.open(ports, note)


def _run_scenarios(opts: CheckOptions, scenarios: Sequence[Scenario],
                   outputs: list[ProgramOutput], sandbox: Sandbox, note: Callable[[str], None],
                   ) -> tuple[list[ScenarioRun], list[RawFrame], int, CaptureStats]:
    """Each scenario in turn; their runs and the frames of their captures, in time order."""
    runs: list[ScenarioRun] = []
    frames: list[RawFrame] = []
    linktype, stats = 1, CaptureStats(0, 0, 0)
    server_down = False
    for scenario in scenarios:
        before = len(outputs)
        if server_down and scenario not in CLIENT_SCENARIOS:
            continue  # the server is not started again: one finding says what it did
        note(_("running the {scenario} scenario").format(scenario=scenario))
        if scenario in LAB_SCENARIOS:
            run, more, linktype_, stats_ = lab_scenario(opts, scenario, outputs, sandbox)
            runs.append(_with_calls(run, outputs[before:]))
            frames += more
            linktype, stats = linktype_, _added(stats, stats_)
            server_down = server_down or not run.listening
            continue
        sandbox.new_network()
        with sandbox.inside():
            recorder = Recorder(opts.port, opts.backend,
                                extra_udp_port=opts.udp_client_port if opts.udp else 0)
            recorder.start()
        try:
            with sandbox.inside():
                runs.append(_client_scenario(opts, scenario, outputs, sandbox)
                            if scenario in CLIENT_SCENARIOS
                            else _scenario(opts, scenario, outputs, sandbox))
        finally:
            frames += recorder.stop()
            linktype, stats = recorder.linktype, _added(stats, recorder.stats)
        if opts.kernel:
            with sandbox.inside():  # the scenario's namespace: its counter alone
                overflows = listen_overflows("/proc/thread-self/net/netstat")
            runs[-1] = dataclasses.replace(runs[-1], listen_overflows=overflows)
        runs[-1] = _with_calls(runs[-1], outputs[before:])
        server_down = server_down or not runs[-1].listening
    return runs, frames, linktype, stats


def _with_calls(run: ScenarioRun, outputs: Sequence[ProgramOutput]) -> ScenarioRun:
    """The scenario with the socket calls of the programs it ran (each program's own)."""
    calls = tuple(c for out in outputs for c in out.calls)
    return dataclasses.replace(run, calls=calls) if calls else run


def _added(a: CaptureStats, b: CaptureStats) -> CaptureStats:
    return CaptureStats(*(x + y if x >= 0 and y >= 0 else -1 for x, y in zip(a, b, strict=True)))


def _scenario(opts: CheckOptions, scenario: Scenario, outputs: list[ProgramOutput],
              sandbox: Sandbox) -> ScenarioRun:
    held = port_holders(opts.port, opts.udp)
    if held:
        raise PortHeldError(opts.port, held[0])
    server = Program(f"server ({scenario})", expand(opts.server, opts.port), cwd=opts.cwd,
                     limits=opts.limits, sandbox=sandbox, trace=opts.trace("server"))
    output: ProgramOutput | None = None
    try:
        start = time.time_ns()
        if not wait_listening(opts.port, server, opts.start_seconds, opts.udp):
            output = server.stop()
            return not_listening_run(opts, scenario, start, output)
        holders, members = port_holders(opts.port, opts.udp), set(server.members())
        if holders and not any(pid in members for pid, _name in holders):
            raise PortHeldError(opts.port, holders[0])  # the verdict would be another's
        facts = SCENARIO_RUNNERS[scenario](opts, server, outputs, sandbox)
        # the span ends here, before the server is stopped: what the kernel sends for its
        # sockets then is not the server's doing
        own_client = scenario is Scenario.ECHO and not opts.pair and not opts.udp
        return ScenarioRun(scenario, start, time.time_ns(), port=opts.port,
                           close_wait=facts.get("close_wait", 0), cpu_ns=facts.get("cpu_ns", 0),
                           wait_ns=facts.get("wait_ns", 0), clients=facts.get("clients", 1),
                           probe=probe_messages(opts) if own_client else (),
                           least_bytes=sum(len(without_newline(m)) for m in opts.messages)
                           if scenario is Scenario.ECHO and opts.client and not opts.udp else 0,
                           close_seconds=opts.close_seconds)
    finally:
        outputs.append(output or server.stop())


Facts = dict[str, int]


def _client_scenario(opts: CheckOptions, scenario: Scenario, outputs: list[ProgramOutput],
                     sandbox: Sandbox) -> ScenarioRun:
    """The student's client against sockcap's own server (or against nothing, for a
    refused connection), fed the messages on stdin; the span ends before a client still
    running is stopped, so the kernel's FIN for it is not taken for its own."""
    mode = {Scenario.CLIENT_ECHO: ServerMode.SLOW_ECHO,
            Scenario.CLIENT_SERVER_CLOSES: ServerMode.CLOSE_FIRST}.get(scenario)
    server = OwnServer(opts.host, opts.port, mode, sandbox.inside) if mode is not None else None
    stdin = probe_messages(opts)
    try:
        start = time.time_ns()
        client = Program(f"client ({scenario})", expand(opts.client, opts.port), cwd=opts.cwd,
                         stdin=b"".join(stdin), limits=opts.limits, sandbox=sandbox,
                         trace=opts.trace("client"))
        exited = client.wait(opts.client_seconds)
        if exited and server is not None:
            server.finish(opts.close_seconds)  # the server's FIN after the client's
        end = time.time_ns()
        output = client.stop()
        outputs.append(output)
    finally:
        if server is not None:
            server.close()
    return ScenarioRun(scenario, start, end, port=opts.port, probe=stdin,
                       client_status=output.status if exited else None,
                       client_said=bool(output.stdout.strip() or output.stderr.strip()),
                       client_seconds=opts.client_seconds)


def _echo(opts: CheckOptions, server: Program, outputs: list[ProgramOutput],
          sandbox: Sandbox) -> Facts:
    if opts.udp:
        # unconnected, from the captured port: a reply from another address is received
        # too, so the capture holds it and the judging names the address
        asyncio.run(udp_echoes(opts.host, opts.port, probe_messages(opts),
                               timeout=REPLY_SECONDS, local_port=opts.udp_client_port,
                               connect=False))
        return {}
    if opts.pair:
        client = Program("client", expand(opts.client, opts.port), cwd=opts.cwd,
                         stdin=b"".join(opts.messages), limits=opts.limits,
                         sandbox=sandbox, trace=opts.trace("client"))  # typed lines: the client
        # decides what it sends
        client.wait(CLIENT_SECONDS)
        outputs.append(client.stop())
        return _after_close(opts, server, None)
    c = EchoClient(opts.host, opts.port)
    if c.connect():
        for message in probe_messages(opts):
            c.exchange(message, seconds=ECHO_REPLY_SECONDS)
    facts = _after_close(opts, server, c)
    c.close()
    return facts


def _after_close(opts: CheckOptions, server: Program, client: EchoClient | None) -> Facts:
    """Close the client's side; watch the server's CPU time and CLOSE_WAIT sockets."""
    cpu = server.cpu_ns()
    t0 = time.monotonic_ns()
    if client is not None:
        closed = client.finish(opts.close_seconds)
    else:  # the user's client has exited: wait until the server's side is closed too
        closed = wait_server_closed(opts.port, opts.close_seconds)
    close_wait = 0 if closed else close_wait_count(opts.port)
    return {"cpu_ns": server.cpu_ns() - cpu, "wait_ns": time.monotonic_ns() - t0,
            "close_wait": close_wait}


def wait_server_closed(port: int, seconds: float) -> bool:
    """Wait (bounded) until no server socket on ``port`` is ESTABLISHED or in CLOSE_WAIT."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(state in (TCP_ESTABLISHED, TCP_CLOSE_WAIT) for state in socket_states(port)):
            return True
        time.sleep(0.02)
    return False


def _partial(opts: CheckOptions, server: Program, outputs: list[ProgramOutput],
             sandbox: Sandbox) -> Facts:
    return _one_message(opts, probe(opts, PARTIAL_MESSAGE), split=True)


def _large(opts: CheckOptions, server: Program, outputs: list[ProgramOutput],
           sandbox: Sandbox) -> Facts:
    return _one_message(opts, probe(opts, large_message()), split=False, seconds=3.0)


def large_message(size: int = LARGE_BYTES) -> bytes:
    """Printable bytes that do not repeat in short runs (so a difference is found where it
    is), ending with a newline; the same every time."""
    rng = random.Random(14)
    letters = string.ascii_letters + string.digits
    return "".join(rng.choice(letters) for _ in range(size - 1)).encode() + b"\n"


def _one_message(opts: CheckOptions, message: bytes, *, split: bool,
                 seconds: float = 1.0) -> Facts:
    c = EchoClient(opts.host, opts.port)
    if c.connect():
        c.exchange(message, split=split, seconds=seconds)
        c.finish(min(opts.close_seconds, 0.5))
    c.close()
    return {}


def _concurrent(opts: CheckOptions, server: Program, outputs: list[ProgramOutput],
                sandbox: Sandbox) -> Facts:
    first, second = EchoClient(opts.host, opts.port), EchoClient(opts.host, opts.port)
    if first.connect():
        first.exchange(b"first client\n")
        if second.connect():
            second.exchange(b"second client\n")
        second.close()
        first.finish(0.3)
    first.close()
    time.sleep(0.1)
    return {"clients": 2}


def _burst(opts: CheckOptions, server: Program, outputs: list[ProgramOutput],
           sandbox: Sandbox) -> Facts:
    def one(i: int) -> None:
        c = EchoClient(opts.host, opts.port)
        if c.connect(BURST_SECONDS):
            c.exchange(f"burst {i}\n".encode(), seconds=BURST_SECONDS)
        c.close()

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(opts.burst)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 2 * BURST_SECONDS + 0.5
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return {"clients": opts.burst}


SCENARIO_RUNNERS: dict[Scenario, Callable[[CheckOptions, Program, list[ProgramOutput], Sandbox],
                                           Facts]] = {
    Scenario.ECHO: _echo,
    Scenario.PARTIAL: _partial,
    Scenario.LARGE: _large,
    Scenario.CONCURRENT: _concurrent,
    Scenario.BURST: _burst,
}


def default_pcap_path(port: int, now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return str(Path("captures") / f"{stamp}-check-{port}.pcap")
