"""What a language, colour and ``--hex`` cost ``sockcap show`` against plain English.

Usage::

    python bench/variants_bench.py [--file F] [--rounds 5] [--write-md]

Each round runs every variant once, one after the other (rounds interleaved, so every
variant sees the same load), output to ``/dev/null`` (a file, not a terminal: colour is
asked for with ``--color always``), with ``tcpdump -nn`` (``TZ=UTC``) as the anchor that
shows how loaded the machine was. The figure per variant is the median of its rounds'
CPU time (user + system of the child), and the ratio to plain English (``show FILE``)
beside it: issue 23's target is ``--lang id``, ``--color always`` and ``--hex --lang id``
within 1.3x of plain English (``--hex`` writes ~4x the bytes of the plain timeline, so
its own English figure is given too, and the Indonesian one against it).
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent

VARIANTS: dict[str, list[str]] = {
    "plain (English)": [],
    "--color always": ["--color", "always"],
    "--lang id": ["--lang", "id"],
    "--lang id --color always": ["--lang", "id", "--color", "always"],
    "--hex": ["--hex"],
    "--hex --lang id": ["--hex", "--lang", "id"],
    "--hex --lang id --color always": ["--hex", "--lang", "id", "--color", "always"],
}


def argv_of(extra: list[str], path: Path) -> list[str]:
    """``--lang`` is the group's option (before ``show``), the rest are show's."""
    lang = extra[extra.index("--lang"): extra.index("--lang") + 2] if "--lang" in extra else []
    rest = [a for a in extra if a not in lang]
    return [sys.executable, "-m", "sockcap", *lang, "show", *rest, str(path)]


def cpu(argv: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   check=False, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "FORCE_COLOR", "SOCKCAP_PURE")}
    env.update(TZ="UTC", TERM="xterm-256color")
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    tcpdump = shutil.which("tcpdump")
    anchor: list[float] = []
    for _round in range(args.rounds):
        for name, extra in VARIANTS.items():
            runs[name].append(cpu(argv_of(extra, args.file), env))
        if tcpdump:
            anchor.append(cpu([tcpdump, "-nn", "-r", str(args.file)], env))
    plain = statistics.median(runs["plain (English)"])
    hex_plain = statistics.median(runs["--hex"])
    load = os.getloadavg()
    print(f"{datetime.date.today()} {args.file.name}, {args.rounds} interleaved rounds, "
          f"median CPU s; load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print("| `sockcap show` | CPU s | vs plain English | vs `--hex` English |")
    print("| --- | ---: | ---: | ---: |")
    for name in VARIANTS:
        m = statistics.median(runs[name])
        vs_hex = f"{m / hex_plain:.2f}x" if "--hex" in name else ""
        print(f"| {name} | {m:.2f} | {m / plain:.2f}x | {vs_hex} |")
    if anchor:
        a = statistics.median(anchor)
        print(f"| anchor: `tcpdump -nn` (TZ=UTC) | {a:.2f} | plain is {a / plain:.2f}x "
              "faster | |")


if __name__ == "__main__":
    main()
