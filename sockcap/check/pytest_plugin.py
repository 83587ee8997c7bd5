"""A pytest plugin for teachers' own tests: the ``sockcap_record`` fixture.

::

    def test_echo(sockcap_record):
        trace = sockcap_record(server=["./server", "{port}"], client=["./client", "127.0.0.1", "{port}"],
                               stdin=b"hello\\nquit\\n")
        assert trace.handshake_completed
        assert trace.echoed_exactly
        assert trace.closed_by_fin

``{port}`` in an argument becomes a free port (or ``port=``). ``closed_by_fin`` means both
sides sent a FIN during the exchange (the server within ``close_seconds``, 6 s by
default, of the client's end); the FIN the kernel sends when sockcap stops a server that
never closed does not count. When the test fails, the
report gets a section with each recorded exchange's facts and timeline, and the pcap is
kept in the test's ``tmp_path``. Capturing needs root or CAP_NET_RAW.

Registered through the ``pytest11`` entry point; importing it costs pytest nothing more
(sockcap's own modules load when the fixture is used).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import pytest

TRACES_KEY = "_sockcap_traces"


@pytest.fixture
def sockcap_record(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """A function that runs a server and client on loopback and returns their Trace."""
    from sockcap.check.grade import free_port
    from sockcap.check.record import CLOSE_SECONDS, record_exchange

    traces: list[Any] = []
    setattr(request.node, TRACES_KEY, traces)

    def record(server: Sequence[str], client: Sequence[str] | None = None,
               stdin: bytes = b"", *, port: int | None = None, timeout: float = 5.0,
               cwd: str | None = None, close_seconds: float = CLOSE_SECONDS) -> Any:
        pcap = str(tmp_path / f"sockcap-{len(traces) + 1}.pcap")
        trace = record_exchange(server, client, stdin, port=port or free_port(), cwd=cwd,
                                pcap=pcap, timeout=timeout, close_seconds=close_seconds)
        traces.append(trace)
        return trace

    return record


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    traces = getattr(item, TRACES_KEY, None)
    if report.when == "call" and report.failed and traces:
        for n, trace in enumerate(traces, 1):
            report.sections.append((f"sockcap exchange {n}", trace.explain()))
