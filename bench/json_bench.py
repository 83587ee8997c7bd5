"""``sockcap show --json`` against ``tcpdump -nn`` and ``tshark -T ek``, side by side.

Usage::

    python bench/json_bench.py [--file bench/data/loopback-1m.pcap] [--rounds 5]
                               [--tshark-rounds 1] [--pure]

Each round runs, one after the other with output to ``/dev/null``: ``sockcap show``,
``sockcap show --json``, ``tcpdump -nn`` (``TZ=UTC``), each on the whole file and on a
one-packet file cut from its head (the start-up); the figure per command is the median
of the rounds' CPU time (user + system of the process, ``os.wait4``), rounds interleaved
so that every command sees the same load. Per packet = (whole - one packet) / packets.
``tshark -T ek`` (Elasticsearch's bulk JSON, one object a packet: the JSON anchor) costs
about two hundred times more, so it runs ``--tshark-rounds`` times after the rounds.
``--pure`` adds one run of ``SOCKCAP_PURE=1 sockcap show --json`` (the reference view).
Peak RSS is each process's ``ru_maxrss``. sockcap runs as its installed ``sockcap``
command (``.venv/bin/sockcap``), as a user runs it; the first line says which build of the
engine that is (``scripts/setup.sh`` makes the profile-guided one, ``scripts/pgo.py``).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# the installed command, as a user types it (the console script beside this Python);
# ``python -m sockcap`` would add runpy's search for the module, ~4 ms of the start-up a
# user never pays
_SCRIPT = Path(sys.executable).with_name("sockcap")
SOCKCAP = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sockcap"]


def cpu(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """CPU seconds (user + system) and peak RSS (kB) of one run, output discarded."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=null, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0,):
        raise SystemExit(f"{argv}: exit {os.waitstatus_to_exitcode(status)}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def first_packet(path: Path, out: Path) -> None:
    """A pcap of ``path``'s first record (a classic pcap file)."""
    data = path.open("rb").read(1 << 20)
    big = data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
    incl = struct.unpack_from(">I" if big else "<I", data, 24 + 8)[0]
    out.write_bytes(data[: 24 + 16 + incl])


def count_packets(path: Path, env: dict[str, str]) -> int:
    out = subprocess.run([*SOCKCAP, "stats", "--json", str(path)], capture_output=True,
                         text=True, env=env, check=True, timeout=900).stdout
    import json

    return int(json.loads(out)["packets"])


def build() -> str:
    """Which build of the compiled engine is installed: the profile-guided one that
    ``scripts/setup.sh`` makes (``scripts/pgo.py``), or the plain ``-O3`` one."""
    sys.path.insert(0, str(BENCH.parent / "scripts"))
    import pgo  # type: ignore[import-not-found]

    return "profile-guided build" if pgo.is_installed() else "plain -O3 build"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tshark-rounds", type=int, default=1)
    ap.add_argument("--pure", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ, TZ="UTC", NO_COLOR="1")
    env.pop("SOCKCAP_PURE", None)
    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.pcap"
        first_packet(args.file, one)
        commands = {
            "sockcap show": [*SOCKCAP, "show"],
            "sockcap show --json": [*SOCKCAP, "show", "--json"],
            "tcpdump -nn (TZ=UTC)": ["tcpdump", "-nn", "-r"],
        }
        whole: dict[str, list[float]] = {k: [] for k in commands}
        start: dict[str, list[float]] = {k: [] for k in commands}
        rss: dict[str, int] = dict.fromkeys(commands, 0)
        for _ in range(args.rounds):
            for name, argv in commands.items():
                t, m = cpu([*argv, str(args.file)], env)
                whole[name].append(t)
                rss[name] = max(rss[name], m)
                start[name].append(cpu([*argv, str(one)], env)[0])
        tshark = [cpu(["tshark", "-T", "ek", "-r", str(args.file)], env)
                  for _ in range(args.tshark_rounds)]
        pure = cpu([*SOCKCAP, "show", "--json", str(args.file)],
                   dict(env, SOCKCAP_PURE="1")) if args.pure else None
        packets = count_packets(args.file, env)
    load = os.getloadavg()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{when}; {args.file.name}: {packets} packets; {args.rounds} rounds; "
          f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; engine: {build()}")
    anchor = statistics.median(whole["tcpdump -nn (TZ=UTC)"])
    json_s = statistics.median(whole["sockcap show --json"])
    print("| command | CPU s (median) | min | max | start-up ms | per packet ns | peak RSS MB "
          "| vs tcpdump -nn |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in commands:
        w, s = statistics.median(whole[name]), statistics.median(start[name])
        print(f"| `{name}` | {w:.2f} | {min(whole[name]):.2f} | {max(whole[name]):.2f} | "
              f"{s * 1000:.1f} | {(w - s) / packets * 1e9:.0f} | {rss[name] / 1024:.0f} | "
              f"{anchor / w:.2f}x |")
    if tshark:
        t = statistics.median(x for x, _ in tshark)
        print(f"| `tshark -T ek` | {t:.2f} | {min(x for x, _ in tshark):.2f} | "
              f"{max(x for x, _ in tshark):.2f} | | {t / packets * 1e9:.0f} | "
              f"{max(m for _, m in tshark) / 1024:.0f} | {anchor / t:.2f}x |")
        print(f"show --json vs tshark -T ek: {t / json_s:.1f}x")
    if pure is not None:
        print(f"| `SOCKCAP_PURE=1 sockcap show --json` (one run) | {pure[0]:.2f} | | | | "
              f"{pure[0] / packets * 1e9:.0f} | {pure[1] / 1024:.0f} | {anchor / pure[0]:.2f}x |")


if __name__ == "__main__":
    main()
