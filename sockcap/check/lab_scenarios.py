"""The UDP scenarios of ``sockcap check`` over the lab's link (:mod:`sockcap.check.lab_link`):
the student's server or client on one host of two network namespaces, sockcap's
counterpart on the other, captured on the student's host."""

from __future__ import annotations

import time

from sockcap.analysis.check.codes import CLIENT_SCENARIOS, Scenario, ScenarioRun
from sockcap.check.options import CheckOptions, expand, not_listening_run, probe_messages
from sockcap.check.programs import Program, ProgramOutput, bound_addresses, wait_listening
from sockcap.check.sandbox import Sandbox
from sockcap.check.wire import Recorder
from sockcap.decode.records import CaptureStats, RawFrame
from sockcap.lab.namespaces import Namespaces


def lab_scenario(opts: CheckOptions, scenario: Scenario, outputs: list[ProgramOutput],
                  sandbox: Sandbox) -> tuple[ScenarioRun, list[RawFrame], int, CaptureStats]:
    """One UDP scenario over the lab's link (:mod:`sockcap.check.lab_link`), captured on
    the student's host."""
    from sockcap.check import lab_link

    of_client = scenario in CLIENT_SCENARIOS
    with lab_link.lab_hosts(lab_link.LINKS.get(scenario, lab_link.LinkOptions())) as ns:
        host = ns.fds["client" if of_client else "server"]
        sandbox.use_network(host)
        with lab_link.inside(host):
            recorder = Recorder(opts.port, opts.backend, iface=lab_link.HOST_IFACE)
            recorder.start()
        try:
            if of_client:
                run = _udp_client_on_lab(opts, scenario, ns, outputs, sandbox)
            else:
                with lab_link.inside(host):
                    run = _udp_server_on_lab(opts, scenario, ns, outputs, sandbox)
        finally:
            frames = recorder.stop()
    return run, frames, recorder.linktype, recorder.stats


def _udp_server_on_lab(opts: CheckOptions, scenario: Scenario, ns: Namespaces,
                       outputs: list[ProgramOutput], sandbox: Sandbox) -> ScenarioRun:
    """The student's UDP server on the server host; sockcap's clients on the client host.
    The calling thread is in the server host (its /proc/net/udp is read)."""
    from sockcap.check import lab_link

    server = Program(f"server ({scenario})", expand(opts.server, opts.port), cwd=opts.cwd,
                     limits=opts.limits, sandbox=sandbox, trace=opts.trace("server"))
    output: ProgramOutput | None = None
    try:
        start = time.time_ns()
        if not wait_listening(opts.port, server, opts.start_seconds, udp=True):
            output = server.stop()
            return not_listening_run(opts, scenario, start, output)
        bound = bound_addresses(opts.port)
        if bound and all(a.startswith("127.") for a in bound):
            # nothing from another host can reach it: said once, no datagram sent
            return ScenarioRun(scenario, start, time.time_ns(), port=opts.port,
                               values={"bound": bound[0]})
        if scenario is Scenario.UDP_CLIENTS:
            lab_link.two_clients(ns, opts.port)
        else:
            lab_link.large_datagram(ns, opts.port)
        return ScenarioRun(scenario, start, time.time_ns(), port=opts.port)
    finally:
        outputs.append(output or server.stop())


def _udp_client_on_lab(opts: CheckOptions, scenario: Scenario, ns: Namespaces,
                       outputs: list[ProgramOutput], sandbox: Sandbox) -> ScenarioRun:
    """The student's UDP client on the client host against sockcap's echo server, over a
    link that loses datagrams (or sends each reply twice, or lets replies overtake: then
    what the client printed is judged too)."""
    from sockcap.check import lab_link

    server = lab_link.UdpEchoServer(ns, opts.port,
                                    late_duplicates=scenario is Scenario.UDP_CLIENT_DUPLICATES)
    stdin = probe_messages(opts)
    try:
        start = time.time_ns()
        client = Program(f"client ({scenario})",
                         expand(opts.client, opts.port, lab_link.SERVER_ADDRESS), cwd=opts.cwd,
                         stdin=b"".join(stdin), limits=opts.limits, sandbox=sandbox,
                         trace=opts.trace("client"))
        exited = client.wait(opts.client_seconds)
        end = time.time_ns()
        output = client.stop()
        outputs.append(output)
    finally:
        server.close()
    return ScenarioRun(scenario, start, end, port=opts.port, probe=stdin,
                       client_status=output.status if exited else None,
                       client_said=bool(output.stdout.strip() or output.stderr.strip()),
                       client_seconds=opts.client_seconds,
                       values={"stdout": output.stdout}
                       if scenario is Scenario.UDP_CLIENT_REORDER else {})
