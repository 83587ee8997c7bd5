"""Instructions per packet (valgrind), load-independent, beside the times of speedups_bench.

Usage::

    python bench/instructions.py [--packets 100000] [--only show] [--write bench/INSTRUCTIONS.md]

Times on a shared machine move with its load; instruction counts do not. Each command runs
under ``valgrind --tool=cachegrind --cache-sim=no`` twice: on the first ``--packets``
records of ``bench/data/loopback-1m.pcap`` and on its first record alone. The difference,
divided by the packets between them, is the command's cost per packet; the one-record
count is its start-up (interpreter, imports, tshark's dissector tables). Both slices are
written by this script (a pcap header and whole records, copied).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from speedups_bench import commands, environment  # noqa: E402

REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def pcap_slice(src: Path, dst: Path, packets: int) -> int:
    """The pcap header and the first ``packets`` records of ``src`` (a little-endian
    pcap, as make_capture.py writes it); the number of records copied."""
    with src.open("rb") as f, dst.open("wb") as out:
        out.write(f.read(24))
        n = 0
        while n < packets:
            header = f.read(16)
            if len(header) < 16:
                break
            incl = int.from_bytes(header[8:12], "little")
            out.write(header + f.read(incl))
            n += 1
    return n


MEASURED = ("sockcap show (compiled)", "sockcap show --hex (compiled)", "sockcap stats (compiled)",
            "sockcap show --json (compiled)",
            "sockcap show (pure)", "tcpdump -nn (TZ=UTC)", "tcpdump -nn -X (TZ=UTC)",
            "tshark -T fields", "tshark -q -z conv,tcp")


def instructions(argv: list[str], env_changes: dict[str, str | None]) -> int:
    env = environment(env_changes)
    vg = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
          "--trace-children=no"]
    if argv[0] == "tcpdump":
        argv = [argv[0], "-Z", "root" if os.geteuid() == 0 else os.environ.get("USER", ""),
                *argv[1:]]
    res = subprocess.run([*vg, *argv], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, timeout=3600)
    found = REFS.findall(res.stderr)
    if res.returncode != 0 or not found:
        raise SystemExit(f"{' '.join(argv)}: exit {res.returncode}\n{res.stderr[-2000:]}")
    return int(found[-1].replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--write", type=Path)
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed")
    if not a.file.exists():
        raise SystemExit(f"{a.file} is missing: run python bench/make_capture.py first")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        big, one = Path(tmp) / "slice.pcap", Path(tmp) / "one.pcap"
        n = pcap_slice(a.file, big, a.packets)
        pcap_slice(a.file, one, 1)
        os.chmod(tmp, 0o755)  # tcpdump may drop to its own user before reading
        for name, argv, env in commands(str(big)):
            if name not in MEASURED or (a.only and not any(o in name for o in a.only)):
                continue
            if not shutil.which(argv[0]):
                continue
            start = instructions([str(one) if x == str(big) else x for x in argv], env)
            total = instructions(argv, env)
            rows.append((name, start, (total - start) / (n - 1)))
            print(f"{name}: start-up {start:,}, {rows[-1][2]:,.0f} a packet", file=sys.stderr,
                  flush=True)
    by_name = {name: per for name, _, per in rows}
    lines = [
        "# Instructions per packet",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC with"
        f" `python bench/instructions.py --packets {a.packets}`: valgrind (cachegrind,"
        f" instruction counts only) on the first {n:,} packets of `{a.file.name}` and on its"
        " first packet alone; per packet = the difference / the packets between.",
        "",
        "| command | start-up (instructions) | instructions a packet |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| `{name}` | {start:,} | {per:,.0f} |" for name, start, per in rows]
    pairs = [("sockcap show (compiled)", "tcpdump -nn (TZ=UTC)"),
             ("sockcap show (compiled)", "tshark -T fields"),
             ("sockcap show --hex (compiled)", "tcpdump -nn -X (TZ=UTC)"),
             ("sockcap stats (compiled)", "tshark -q -z conv,tcp"),
             ("sockcap show (compiled)", "sockcap show (pure)")]
    lines += ["", "| sockcap | anchor | anchor's instructions a packet / sockcap's |",
              "| --- | --- | ---: |"]
    lines += [f"| `{s}` | `{t}` | {by_name[t] / by_name[s]:.1f}x |" for s, t in pairs
              if s in by_name and t in by_name]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.write:
        a.write.write_text(text)


if __name__ == "__main__":
    main()
