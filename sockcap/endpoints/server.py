"""``sockcap server``: the echo server, served until Ctrl-C or SIGTERM, in one process or
several.

The pieces live beside this module: :mod:`sockcap.endpoints.echo` is the echo protocol
(:class:`EchoServer`, its TCP and UDP protocols, :class:`ServerStats`), and
:mod:`sockcap.endpoints.workers` the supervisor of ``--workers N`` (the ``SO_REUSEPORT``
sockets bound before ``fork``, the workers that die with the parent, their stop by PID).
:func:`run_server` wires them: one event loop that stops cleanly on a signal, run either
here or in each worker. The names the rest of sockcap and its tests import from here
(``EchoServer``, ``ServerStats``, ``run_server``, ``stamped``) stay importable from here.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable

from sockcap.endpoints.address import check_port, is_wildcard, parse_host
from sockcap.endpoints.echo import EchoServer, Log, ServerStats, stamped
from sockcap.endpoints.workers import listen_shared, run_workers
from sockcap.errors import EndpointError, ExitCode
from sockcap.i18n import _
from sockcap.signals import exit_code_for

__all__ = ["EchoServer", "Log", "ServerStats", "run_server", "stamped"]


def run_server(
    host: str = "127.0.0.1",
    port: int = 5001,
    *,
    udp: bool = False,
    max_clients: int = 1024,
    idle_timeout: float | None = 300.0,
    max_message: int = 65536,
    workers: int = 1,
    log: Log | None = None,
) -> ExitCode:
    """Serve until Ctrl-C or SIGTERM, then close cleanly and return (``sockcap server``).

    Returns the exit code for the signal that stopped it, with or without workers: 130
    after SIGINT (Ctrl-C), 143 after SIGTERM. ``workers`` > 1 serves from that many
    processes sharing the port (see :mod:`sockcap.endpoints.workers`); ``max_clients``
    then applies to each. Raises EndpointError when the address cannot be used.
    """

    def make(sock: socket.socket | None = None, label: str = "") -> EchoServer:
        return EchoServer(
            host,
            port,
            udp=udp,
            max_clients=max_clients,
            idle_timeout=idle_timeout,
            max_message=max_message,
            log=log,
            sock=sock,
            label=label,
        )

    if workers < 1:
        raise EndpointError(_("workers must be at least 1, not {workers}").format(workers=workers))
    if workers == 1:
        return exit_code_for(_run_loop(make()))
    host = parse_host(host)
    check_port(port, allow_zero=True)
    socks = listen_shared(host, port, udp, workers)
    return exit_code_for(run_workers(lambda sock, label: _run_loop(make(sock, label)), socks, log))


def _run_loop(server: EchoServer) -> int:
    """Serve until a stop signal; the signal's number."""
    try:
        return asyncio.run(_serve(server))
    except KeyboardInterrupt:
        return signal.SIGINT  # Ctrl-C arrived before the loop's own handler was in place


async def _serve(server: EchoServer) -> int:
    await server.start()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    _stop_on_signals(on_signal)
    server.say(_("listening on {address} ({protocol}); Ctrl-C stops").format(address=server.address, protocol=server.protocol))
    if is_wildcard(server.host):
        server.say(
            _("warning: {host} means every network interface: other machines can reach this server").format(host=server.host)
        )
    try:
        await stop.wait()
        return received[0]
    finally:
        server.say("stopping")
        await server.close()
        stats = server.stats
        server.say(
            _("stopped: {connections} connections, {messages} messages, {bytes} bytes echoed").format(connections=stats.connections, messages=stats.messages, bytes=stats.bytes)
        )


def _stop_on_signals(stop: Callable[[int], None]) -> None:
    """Make SIGINT (Ctrl-C) and SIGTERM call ``stop(signum)`` instead of killing the process."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or Windows: KeyboardInterrupt still ends run()
