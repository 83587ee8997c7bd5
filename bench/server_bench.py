"""Echo server benchmark: sockcap's server against the classic C forking server and socat.

Usage::

    python bench/server_bench.py [--seconds 2] [--write bench/SERVER_RESULTS.md]

Every server runs as its own process on 127.0.0.1 and is driven by the same C load
client (``bench/c/load_client.c``: one thread, epoll), so the numbers are about the
servers and not about the load generator. Measured, ``--seconds`` each:

* round trips per second (16-byte messages) over 1, 10 and 100 persistent connections;
* connections per second (connect, 16-byte echo, close), 10 at a time.

Each figure is the best of ``--repeat`` runs, in two CPU layouts (with 2+ CPUs):

* ``pinned``: the server (and every process it forks) on CPU 0, the load client on
  CPU 1, as if on two machines. Each server gets exactly one CPU; stable numbers.
* ``free``: the scheduler places everything. The forking servers can use every CPU
  (shared with the load client); on a virtual machine the one-connection figure jumps
  between ~10,000 (a wake-up across CPUs per message) and ~70,000 (both on one CPU)
  from run to run, which says more about the scheduler than about the servers.

The servers: ``sockcap`` (``run_server`` with no log, as ``sockcap server`` runs it
minus the per-message console lines), ``sockcap --workers 2`` (the same in two worker
processes sharing the port with SO_REUSEPORT; pinned, both workers share CPU 0 like
every other server's processes, so that column measures the cost of the second
process; free, they can use both CPUs), ``C fork`` (``bench/c/echo_server.c``, the
classic fork-per-connection student server) and ``socat`` (``TCP-LISTEN,fork EXEC:cat``:
fork plus exec of cat per connection). Needs gcc; socat is skipped if missing.
Every process this script starts is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
C_DIR = HERE / "c"
HOST = "127.0.0.1"
LAYOUTS = ["pinned", "free"] if (os.cpu_count() or 1) >= 2 else ["free"]
SCENARIOS = [  # (label, load_client mode, connections)
    ("round trips/s, 1 connection", "rt", 1),
    ("round trips/s, 10 connections", "rt", 10),
    ("round trips/s, 100 connections", "rt", 100),
    ("connections/s (10 in parallel)", "cps", 10),
]
SOCKCAP_SERVER = (
    "import sys; from sockcap.endpoints.server import run_server; "
    "run_server('127.0.0.1', int(sys.argv[1]), max_clients=10000, "
    "workers=int(sys.argv[2]), log=None)"
)


def build(source: str, out_dir: Path) -> Path:
    """Compile ``bench/c/<source>.c`` with gcc -O2 into ``out_dir``."""
    exe = out_dir / source
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(exe), str(C_DIR / f"{source}.c")], check=True
    )
    return exe


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], limit: float = 10.0) -> None:
    """Return once something accepts connections on ``port``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {limit} s")


@contextlib.contextmanager
def running(argv: list[str], port: int, pinned: bool) -> Iterator[int]:
    """Run a server process for the duration of the block; stop it by its PID."""
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_pin(0, pinned),  # noqa: PLW1509 (this script starts no threads)
    )
    try:
        wait_listening(port, proc)
        time.sleep(0.2)  # let the probe connection finish on the server's side
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _pin(cpu: int, pinned: bool) -> Callable[[], None] | None:
    """A preexec function putting the child (and all it forks) on ``cpu``."""
    if not pinned:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class Result(NamedTuple):
    rate: float  # operations per second
    cpu_us: float | None  # server CPU per operation (all its processes); rt runs only


def measure(
    load: Path, scenario: tuple[str, str, int], port: int, server: int, args: Namespace
) -> Result:
    """One load_client run against the server process ``server``."""
    _, mode, conns = scenario
    argv = [str(load), mode, HOST, str(port), str(conns), str(args.seconds)]
    before = tree_cpu(server)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOAD_HOLD": "1"},  # keep connections (and children) alive
        preexec_fn=_pin(1, args.pinned),  # noqa: PLW1509 (this script starts no threads)
    )
    assert proc.stdin and proc.stdout and proc.stderr
    line = proc.stdout.readline()  # the load client stops itself after args.seconds
    used = tree_cpu(server) - before
    proc.stdin.close()
    proc.wait(30)
    match = re.search(r"ops=(\d+) .*rate=([\d.]+)", line)
    if proc.returncode or not match:
        print(f"  {' '.join(argv)} failed: {proc.stderr.read().strip()}", file=sys.stderr)
        return Result(0.0, None)
    ops = int(match.group(1))
    cpu_us = used / ops * 1e6 if mode == "rt" and ops else None
    return Result(float(match.group(2)), cpu_us)


def tree_cpu(root: int) -> float:
    """CPU seconds used so far by ``root`` and every process descended from it.

    A forking server's work is done by its children, so they count. Read from
    ``/proc/PID/task/*/schedstat`` (nanoseconds on CPU), so it is unaffected by
    whatever else the machine is doing.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = [root]
    for pid in tree:  # grows while it is walked: children, grandchildren...
        tree += [child for child, parent in parents.items() if parent == pid]
    return sum(_cpu_seconds(pid) for pid in tree)


def _cpu_seconds(pid: int) -> float:
    total = 0
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
    return total / 1e9


def server_commands(bin_dir: Path) -> dict[str, list[str]]:
    """Each server's command line; ``{port}`` is filled in per run."""
    commands = {
        "sockcap": [sys.executable, "-c", SOCKCAP_SERVER, "{port}", "1"],
        "sockcap --workers 2": [sys.executable, "-c", SOCKCAP_SERVER, "{port}", "2"],
        "C fork": [str(build("echo_server", bin_dir)), "{port}"],
    }
    if shutil.which("socat"):
        commands["socat"] = [
            "socat",
            "TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,backlog=1024",
            "EXEC:cat",
        ]
    return commands


def bench_scenario(
    commands: dict[str, list[str]], scenario: tuple[str, str, int], load: Path, args: Namespace
) -> dict[str, Result]:
    """One scenario against fresh processes of every server, best of ``args.repeat``.

    The servers take turns run by run, so a burst of load from elsewhere on the
    machine hurts them all alike instead of whichever happened to be measured then.
    """
    ports = {name: free_port() for name in commands}
    runs: dict[str, list[Result]] = {name: [] for name in commands}
    with contextlib.ExitStack() as stack:
        pids = {
            name: stack.enter_context(
                running([arg.replace("{port}", str(ports[name])) for arg in argv],
                        ports[name], args.pinned)
            )
            for name, argv in commands.items()
        }
        for _ in range(args.repeat):
            for name in commands:
                runs[name].append(measure(load, scenario, ports[name], pids[name], args))
    for name, results in runs.items():
        shown = ", ".join(_show(result) for result in results)
        print(f"  {scenario[0]}, {name}: {shown}", file=sys.stderr)
    return {name: _best(results) for name, results in runs.items()}


def _show(result: Result) -> str:
    cpu = f" ({result.cpu_us:.1f} us CPU)" if result.cpu_us is not None else ""
    return f"{result.rate:,.0f}{cpu}"


def _best(results: list[Result]) -> Result:
    """The highest rate, and the lowest CPU per operation (the least disturbed run)."""
    cpus = [result.cpu_us for result in results if result.cpu_us is not None]
    return Result(max(result.rate for result in results), min(cpus) if cpus else None)


def table(results: dict[str, list[Result]]) -> list[str]:
    """Markdown table: one row per scenario, rate and ratio to the C server per column."""
    names = list(results)
    lines = [
        "| scenario | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for row, (label, _, _) in enumerate(SCENARIOS):
        base = results["C fork"][row].rate
        cells = [_cell(results[name][row].rate, base, "{:,.0f}") for name in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for row, (_, mode, conns) in enumerate(SCENARIOS):
        base_cpu = results["C fork"][row].cpu_us
        if mode != "rt" or base_cpu is None:
            continue
        cells = [
            _cell(results[name][row].cpu_us or 0.0, base_cpu, "{:.1f} us") for name in names
        ]
        lines.append(f"| server CPU per round trip, {conns} conn. | " + " | ".join(cells) + " |")
    return lines


def _cell(value: float, base: float, form: str) -> str:
    ratio = f" ({value / base:.2f}x)" if base else ""
    return form.format(value) + ratio


def machine() -> str:
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    return f"{os.getloadavg()[0]:.1f}"


LAYOUT_NOTES = {
    "pinned": "server (and its forked children) on CPU 0, load client on CPU 1",
    "free": "no pinning: the scheduler places servers, children and load client",
}


def report(tables: dict[str, list[str]], args: Namespace) -> str:
    date = subprocess.run(["date"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Echo server benchmark",
        "",
        f"Command: `python bench/server_bench.py --seconds {args.seconds:g} "
        f"--repeat {args.repeat}`  ",
        f"Date: {date}  ",
        f"Machine: {machine()}  ",
        f"Load average (1 min) before / after: {args.load_before} / {load_average()}",
        "",
        "Operations per second, best of each figure's runs (ratio to the C forking",
        "server; higher is better). Load from `bench/c/load_client.c` (one thread,",
        "epoll), 16-byte messages, loopback only. The last rows are the CPU time the",
        "server used per round trip, all its processes counted (a forking server's",
        "children and their fork), lowest of the runs; lower is better, and unlike",
        "the rates it hardly depends on what else the machine is doing.",
    ]
    for layout, table_lines in tables.items():
        lines += ["", f"## {layout}: {LAYOUT_NOTES[layout]}", "", *table_lines]
    return "\n".join(lines) + "\n"


def run_layout(bin_dir: Path, load: Path, args: Namespace) -> list[str]:
    commands = server_commands(bin_dir)
    results: dict[str, list[Result]] = {name: [] for name in commands}
    print("pinned:" if args.pinned else "free:", file=sys.stderr)
    for scenario in SCENARIOS:
        for name, result in bench_scenario(commands, scenario, load, args).items():
            results[name].append(result)
    return table(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best)")
    parser.add_argument("--layout", choices=LAYOUTS, action="append", help="default: all")
    parser.add_argument("--write", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    if not shutil.which("gcc"):
        print("gcc is needed to build the C server and load client", file=sys.stderr)
        return 1
    args.load_before = load_average()
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        bin_dir = Path(tmp)
        load = build("load_client", bin_dir)
        for layout in args.layout or LAYOUTS:
            args.pinned = layout == "pinned"
            tables[layout] = run_layout(bin_dir, load, args)
    text = report(tables, args)
    print(text)
    if args.write:
        args.write.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
