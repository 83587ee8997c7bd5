"""The compiled path against the pure path and the anchors, same run, interleaved rounds.

Usage::

    python bench/make_capture.py                      # once: bench/data/loopback-1m.pcap
    python bench/speedups_bench.py [--rounds 3] [--only hex] [--write bench/SPEEDUPS_RESULTS.md]

Each round runs every command once, in the same order, output to /dev/null; the figure
per command is the median over the rounds of its wall time and of its CPU time (user +
system, ``os.wait4``), and its peak RSS. tcpdump runs with ``TZ=UTC`` (it calls
``localtime()`` per packet, and with ``TZ`` unset glibc checks ``/etc/localtime`` each
time: the fair anchor is tcpdump at its fastest); the ``TZ``-unset run is listed beside
it. Ratios are anchor / sockcap, from CPU time (what the machine's other load does not
inflate; the machine is shared) and from wall time. Issue 17's targets: show >= 3x
``tcpdump -nn`` and >= 30x tshark fields, ``--hex`` >= 3x ``tcpdump -nn -X``, stats >= 8x
``tshark -q -z conv,tcp``, ``follow --stream N`` >= 8x ``tshark -z follow,tcp,raw,N`` for a
stream that starts halfway through the file; RSS < 100 MB. ``--only WORD`` (repeatable)
runs the commands whose name holds WORD.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

BENCH = Path(__file__).resolve().parent
TSHARK_FIELDS = ["frame.time_relative", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
                 "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport", "tcp.flags.str",
                 "tcp.seq", "tcp.ack", "tcp.len"]


STREAM = 31220  # the first TCP stream to start in the second half of the 1M-packet file


class Run(NamedTuple):
    wall: float
    cpu: float
    rss_mb: float
    status: int


def sockcap_argv() -> list[str]:
    script = Path(sys.executable).with_name("sockcap")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sockcap"]


def commands(path: str) -> list[tuple[str, list[str], dict[str, str | None]]]:
    sc = sockcap_argv()
    fields = [arg for f in TSHARK_FIELDS for arg in ("-e", f)]
    compiled = {"SOCKCAP_PURE": None, "SOCKCAP_REQUIRE_EXTENSIONS": "1"}
    pure = {"SOCKCAP_PURE": "1"}
    return [
        ("sockcap show (compiled)", [*sc, "show", path], compiled),
        ("sockcap show --hex (compiled)", [*sc, "show", "--hex", path], compiled),
        ("sockcap show --json (compiled)", [*sc, "show", "--json", path], compiled),
        ("sockcap show (pure)", [*sc, "show", path], pure),
        ("sockcap show --hex (pure)", [*sc, "show", "--hex", path], pure),
        ("tcpdump -nn (TZ=UTC)", ["tcpdump", "-nn", "-r", path], {"TZ": "UTC"}),
        ("tcpdump -nn (TZ unset)", ["tcpdump", "-nn", "-r", path], {"TZ": None}),
        ("tcpdump -nn -X (TZ=UTC)", ["tcpdump", "-nn", "-X", "-r", path], {"TZ": "UTC"}),
        ("tshark -T fields", ["tshark", "-r", path, "-T", "fields", *fields,
                              "-o", "tcp.relative_sequence_numbers:TRUE"], {}),
        ("sockcap stats (compiled)", [*sc, "stats", path], compiled),
        ("sockcap stats (pure)", [*sc, "stats", path], pure),
        ("tshark -q -z conv,tcp", ["tshark", "-q", "-z", "conv,tcp", "-r", path], {}),
        (f"sockcap follow --raw --stream {STREAM} (compiled)",
         [*sc, "follow", "--raw", "--stream", str(STREAM), path], compiled),
        (f"sockcap follow --raw --stream {STREAM} (pure)",
         [*sc, "follow", "--raw", "--stream", str(STREAM), path], pure),
        (f"tshark -q -z follow,tcp,raw,{STREAM}",
         ["tshark", "-q", "-z", f"follow,tcp,raw,{STREAM}", "-r", path], {}),
    ]


def environment(env_changes: dict[str, str | None]) -> dict[str, str]:
    """This process' environment with the changes (None: the variable removed)."""
    env = dict(os.environ)
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def run_once(argv: list[str], env_changes: dict[str, str | None]) -> Run:
    env = environment(env_changes)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        exe = shutil.which(argv[0]) or argv[0]
        start = time.perf_counter()
        pid = os.posix_spawn(exe, argv, env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - start
    finally:
        os.close(devnull)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
               os.waitstatus_to_exitcode(status))


def median_run(runs: list[Run]) -> Run:
    return Run(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs),
               max(r.rss_mb for r in runs), max(r.status for r in runs))


RATIOS = (  # (sockcap command, anchor, target)
    ("sockcap show (compiled)", "tcpdump -nn (TZ=UTC)", 3.0),
    ("sockcap show (compiled)", "tcpdump -nn (TZ unset)", 0.0),
    ("sockcap show (compiled)", "tshark -T fields", 30.0),
    ("sockcap show --hex (compiled)", "tcpdump -nn -X (TZ=UTC)", 3.0),
    ("sockcap show (pure)", "tcpdump -nn (TZ=UTC)", 0.0),
    ("sockcap show (pure)", "tshark -T fields", 0.0),
    ("sockcap show --hex (pure)", "tcpdump -nn -X (TZ=UTC)", 0.0),
    ("sockcap show (compiled)", "sockcap show (pure)", 0.0),
    ("sockcap show --hex (compiled)", "sockcap show --hex (pure)", 0.0),
    ("sockcap stats (compiled)", "tshark -q -z conv,tcp", 8.0),
    ("sockcap stats (pure)", "tshark -q -z conv,tcp", 0.0),
    (f"sockcap follow --raw --stream {STREAM} (compiled)", f"tshark -q -z follow,tcp,raw,{STREAM}", 8.0),
    (f"sockcap follow --raw --stream {STREAM} (pure)", f"tshark -q -z follow,tcp,raw,{STREAM}", 0.0),
)


def env_text(env: dict[str, str | None]) -> str:
    return "".join(f"{k}={v} " for k, v in env.items() if v is not None)


def report(path: Path, rounds: int, results: dict[str, Run], argvs: dict[str, list[str]],
           envs: dict[str, dict[str, str | None]]) -> str:
    lines = [
        "# The compiled path against the pure path, tcpdump and tshark",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with"
        f" `python bench/speedups_bench.py --rounds {rounds}` on `{path.name}`"
        f" ({path.stat().st_size / 1e6:.0f} MB), output to /dev/null; medians of {rounds}"
        " interleaved rounds.",
        f"Machine: {os.cpu_count()} CPUs, Linux {platform.release()}, Python"
        f" {platform.python_version()}; load average at the end"
        f" {os.getloadavg()[0]:.1f} (shared machine: read the CPU-time ratios).",
        "",
        "| command | exit | wall s | CPU s | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        lines.append(f"| `{name}` | {r.status} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss_mb:.0f} |")
    lines += ["", "| sockcap | anchor | by CPU time | by wall time | target |",
              "| --- | --- | ---: | ---: | --- |"]
    for name, anchor, target in RATIOS:
        if name not in results or anchor not in results:
            continue
        a, s = results[anchor], results[name]
        by_cpu, by_wall = a.cpu / s.cpu, a.wall / s.wall
        verdict = "" if not target else (f">= {target:g}x: " + (
            "met" if min(by_cpu, by_wall) >= target else
            "met by CPU time" if by_cpu >= target else "NOT met"))
        lines.append(f"| `{name}` | `{anchor}` | {by_cpu:.2f}x | {by_wall:.2f}x | {verdict} |")
    lines += ["", "Commands:", ""]
    lines += [f"- {n}: `{env_text(envs[n])}{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(v))}`"
              for n, v in argvs.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--write", type=Path)
    a = ap.parse_args()
    if not a.file.exists():
        raise SystemExit(f"{a.file} is missing: run python bench/make_capture.py first")
    subprocess.run(["cat", str(a.file)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    chosen = [c for c in commands(str(a.file))
              if (not a.only or any(o in c[0] for o in a.only)) and shutil.which(c[1][0])]
    runs: dict[str, list[Run]] = {name: [] for name, _, _ in chosen}
    for i in range(a.rounds):
        for name, argv, env in chosen:
            r = run_once(argv, env)
            runs[name].append(r)
            print(f"round {i + 1} {name}: wall {r.wall:.2f} s, CPU {r.cpu:.2f} s,"
                  f" {r.rss_mb:.0f} MB, exit {r.status}", file=sys.stderr, flush=True)
    results = {name: median_run(rs) for name, rs in runs.items()}
    text = report(a.file, a.rounds, results, {n: v for n, v, _ in chosen},
                  {n: e for n, _, e in chosen})
    print(text)
    if a.write:
        a.write.write_text(text)


if __name__ == "__main__":
    main()
