"""Start-up cost: ``sockcap show`` of a one-packet file and ``sockcap --help``, in CPU time,
against ``tcpdump -nn -r`` of the same file and ``python3 -c pass`` in the same run.

Usage::

    python bench/startup_bench.py [--file F] [--rounds 30]

The one-packet file is the first record of ``--file`` (default: the bench's loopback
capture, cut with ``editcap -r FILE OUT 1``; a 24-byte header and one record otherwise).
Each round runs every command once, in the same order (interleaved, so a change of load
on a shared machine hits all of them alike); a command's figure is the median over the
rounds of its process's CPU time (user + system, ``os.wait4``'s rusage: what the machine's
other work does not inflate, unlike wall time). Output goes to ``/dev/null``.

Also printed: the sockcap modules ``python -X importtime`` shows for each of the two
sockcap commands, so a module that should not be there is seen at once (the test
``tests/test_startup.py`` asserts on module lists, never on times).

``--instructions``: also each command's instructions, counted by valgrind's cachegrind
(one run each; what the load of a shared machine does not move, unlike CPU time).

Targets (issue #23): ``show`` of a one-packet file <= 50 ms CPU, ``--help`` <= 60 ms.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DEFAULT_FILE = BENCH / "data" / "loopback-200k.pcap"


def sockcap_argv() -> list[str]:
    """The installed ``sockcap`` script next to this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("sockcap")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sockcap"]


def one_packet(source: Path, out: Path) -> None:
    """The first record of ``source`` (or a made SYN when there is no file) into ``out``."""
    if source.exists() and shutil.which("editcap"):
        subprocess.run(["editcap", "-r", str(source), str(out), "1"], check=True,
                       stdout=subprocess.DEVNULL)
        return
    eth = b"\0" * 12 + b"\x08\x00"
    ip = bytes.fromhex("45000028000140004006" "0000" "7f000001" "7f000001")
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, 1, 0, 0x50, 0x02, 65495, 0, 0)
    frame = eth + ip + tcp
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        f.write(struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame)


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """The CPU time (user + system) of one run of ``argv``, its output to /dev/null."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=null, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv}: exit {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def instructions(argv: list[str], env: dict[str, str]) -> int:
    """The instructions one run of ``argv`` executes (valgrind --tool=cachegrind)."""
    result = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                             "--cachegrind-out-file=/dev/null", *argv],
                            capture_output=True, text=True, env=env, timeout=600)
    for line in result.stderr.splitlines():
        if "I" in line and "refs:" in line:
            return int(line.rsplit(":", 1)[1].replace(",", "").strip())
    raise SystemExit(f"valgrind gave no count for {argv}: {result.stderr[-500:]}")


def sockcap_modules(args: list[str], env: dict[str, str]) -> list[str]:
    """The sockcap modules ``python -X importtime`` lists for ``sockcap ARGS``."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "sockcap", *args],
                            capture_output=True, text=True, env=env, timeout=120)
    names = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
             if line.startswith("import time:") and "|" in line]
    return [n for n in names if n.startswith("sockcap")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--instructions", action="store_true",
                    help="also count each command's instructions with valgrind")
    args = ap.parse_args()
    env = dict(os.environ, TZ="UTC", LANG="C.UTF-8")
    env.pop("LANGUAGE", None)
    tmp = Path(tempfile.mkdtemp(prefix="sockcap-startup-"))
    try:
        one = tmp / "one.pcap"
        one_packet(args.file, one)
        commands = {
            "python3 -c pass": [sys.executable, "-c", "pass"],
            "tcpdump -nn -r ONE": ["tcpdump", "-nn", "-r", str(one)],
            "sockcap show ONE": [*sockcap_argv(), "show", str(one)],
            "sockcap --lang id show ONE": [*sockcap_argv(), "--lang", "id", "show", str(one)],
            "sockcap --help": [*sockcap_argv(), "--help"],
        }
        if shutil.which("tcpdump") is None:
            del commands["tcpdump -nn -r ONE"]
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(cpu_seconds(argv, env))
        load = os.getloadavg()
        print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
              f"{args.rounds} interleaved rounds, load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
        print("| command | median CPU ms | min | max |")
        print("| --- | ---: | ---: | ---: |")
        for name, values in times.items():
            print(f"| `{name}` | {statistics.median(values) * 1000:.1f} | "
                  f"{min(values) * 1000:.1f} | {max(values) * 1000:.1f} |")
        if args.instructions and shutil.which("valgrind"):
            print("\n| command | instructions |\n| --- | ---: |")
            for name, argv in commands.items():
                print(f"| `{name}` | {instructions(argv, env):,} |")
        for label, argv in (("show ONE", ["show", str(one)]), ("--help", ["--help"])):
            mods = sockcap_modules(argv, env)
            print(f"\nsockcap {label}: {len(mods)} sockcap modules: {' '.join(sorted(mods))}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
