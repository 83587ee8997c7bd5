"""``sockcap show --style tcpdump`` against ``tcpdump -nn``, same run, CPU time.

Usage::

    python bench/tcpdump_bench.py [--file bench/data/loopback-1m.pcap] [--rounds 5]
                                  [--tz Europe/Berlin] [--pure]

Each round runs, one after the other, output to ``/dev/null``: ``sockcap show --style
tcpdump FILE``, ``sockcap show FILE`` (the Wireshark-style line, for scale),
``tcpdump -nn -r FILE``, and the same three on a one-packet file cut from FILE (the
start-up of each, measured apart); all with the same ``TZ`` (both print local time). The
figure per command is the median over the rounds of the child's user + system CPU
seconds (``os.wait4``); per packet is the file's figure less the one-packet file's,
divided by the packets. ``--pure`` adds one run of the pure path (``SOCKCAP_PURE=1``),
the Python view. Peak RSS is the largest ``ru_maxrss`` seen. Ratios, never asserted times.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import struct
import sys
import tempfile
from pathlib import Path

from make_capture import RecordCounter

BENCH = Path(__file__).resolve().parent


def sockcap_argv() -> list[str]:
    script = Path(sys.executable).with_name("sockcap")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sockcap"]


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB) of one run of ``argv``, output discarded."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
        pid = os.posix_spawn(shutil.which(argv[0]) or argv[0], argv, env, file_actions=actions)
        _, _status, usage = os.wait4(pid, 0)
    finally:
        os.close(devnull)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def one_packet(path: Path, out: Path) -> None:
    """The pcap header and first record of ``path`` (a classic pcap file)."""
    with path.open("rb") as f:
        head = f.read(24)
        rec = f.read(16)
        magic = struct.unpack("<I", head[:4])[0]
        order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        caplen = struct.unpack(order + "I", rec[8:12])[0]
        out.write_bytes(head + rec + f.read(caplen))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tz", default="Europe/Berlin")
    ap.add_argument("--pure", action="store_true")
    ap.add_argument("--color", action="store_true",
                    help="also `--style tcpdump --color always` (the engine's colour)")
    args = ap.parse_args()
    counter = RecordCounter(args.file)
    counter.update()
    packets = counter.count
    env = {**os.environ, "TZ": args.tz, "SOCKCAP_PURE": ""}
    sockcap = sockcap_argv()
    with tempfile.TemporaryDirectory(prefix="sockcap-tcpdump-bench-") as tmp:
        small = Path(tmp) / "one.pcap"
        one_packet(args.file, small)
        commands = {}
        for label, path in (("", args.file), (" (1 packet)", small)):
            commands.update({
                f"sockcap show --style tcpdump{label}": [*sockcap, "show", "--style", "tcpdump",
                                                         str(path)],
                f"sockcap show{label}": [*sockcap, "show", str(path)],
                f"tcpdump -nn{label}": ["tcpdump", "-nn", "-r", str(path)],
            })
            if args.color:
                commands[f"sockcap show --style tcpdump --color always{label}"] = [
                    *sockcap, "show", "--style", "tcpdump", "--color", "always", str(path)]
        times: dict[str, list[float]] = {name: [] for name in commands}
        rss: dict[str, float] = {name: 0.0 for name in commands}
        for _round in range(args.rounds):
            for name, argv in commands.items():
                cpu, mb = run(argv, env)
                times[name].append(cpu)
                rss[name] = max(rss[name], mb)
        pure = None
        if args.pure:
            pure = run([*sockcap, "show", "--style", "tcpdump", str(args.file)],
                       {**env, "SOCKCAP_PURE": "1"})
    med = {name: statistics.median(t) for name, t in times.items()}
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    print(f"`python bench/tcpdump_bench.py --file {args.file.name} --rounds {args.rounds} "
          f"--tz {args.tz}{' --pure' if args.pure else ''}{' --color' if args.color else ''}`, {stamp}, {packets} packets, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; median CPU seconds "
          f"(user + system) of {args.rounds} interleaved rounds\n")
    print("| command | CPU s (file) | CPU s (1 packet) | per packet (µs) | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    names = ["sockcap show --style tcpdump", "sockcap show", "tcpdump -nn"]
    if args.color:
        names.insert(1, "sockcap show --style tcpdump --color always")
    for name in names:
        whole, start = med[name], med[f"{name} (1 packet)"]
        per = (whole - start) / packets * 1e6
        print(f"| `{name}` | {whole:.3f} | {start:.3f} | {per:.3f} | {rss[name]:.0f} |")
    td, sc = med["tcpdump -nn"], med["sockcap show --style tcpdump"]
    td1, sc1 = med["tcpdump -nn (1 packet)"], med["sockcap show --style tcpdump (1 packet)"]
    print(f"\n`show --style tcpdump` vs `tcpdump -nn`: {td / sc:.2f}x start-up included, "
          f"{(td - td1) / (sc - sc1):.2f}x per packet (start-up apart).")
    if args.color:
        colored = med["sockcap show --style tcpdump --color always"]
        print(f"`--color always`: {colored / sc:.2f}x the same notation without colour.")
    if pure is not None:
        print(f"Pure path (the Python view), one run: {pure[0]:.2f} CPU s, peak RSS "
              f"{pure[1]:.0f} MB; the compiled engine {pure[0] / sc:.1f}x faster.")


if __name__ == "__main__":
    main()
