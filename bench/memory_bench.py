"""Peak memory of show, follow and stats on synthetic captures that once made it grow
with the file (issue 27 item 16), on both engines.

Usage::

    python bench/make_capture.py --synthetic KIND --count N --out bench/data/KIND.pcap
    python bench/memory_bench.py [--data bench/data] [--kinds KIND ...] [--small-suffix -s]
        [--command "show --explain"] [--engines compiled]

For each capture kind (one 64 KiB-segment stream, a SYN scan, refused connections all at
one timestamp, finished conversations) it runs the command the issue names on both engines, output to
/dev/null, and reads the child's peak RSS from ``wait4`` (the kernel's ``ru_maxrss``, the
figure ``/usr/bin/time -v`` prints as "Maximum resident set size"). For ``stats`` it also
gives the growth per conversation between two files of different sizes (``KIND-s.pcap``
and ``KIND.pcap``), which is the per-finished-conversation cost. ``--command`` runs
another command over the kinds given (``show --explain`` over ``finished``: its
connections' rows), ``--engines`` one engine only (the pure one takes minutes on 2M
conversations); set ``PYTHONPATH`` to a copy of another commit to measure it beside.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
COMMANDS = {
    "one-stream": ["follow", "--stream", "0", "--raw"],
    "syn-scan": ["show"],
    "same-time": ["show"],
    "finished": ["stats"],
}

FINISHED_FRAMES = 7  # make_capture.py's "finished" conversation: handshake, data, FIN, FIN, ACK


def pcap_records(path: Path) -> int:
    """Records in a classic little-endian pcap file (make_capture.py writes them), read in
    plain chunks after the runs: an mmap of the file in this process would count in each
    child's peak RSS (Linux carries the parent's RSS at fork into the child's ru_maxrss)."""
    rec = struct.Struct("<IIII")
    n, skip, buf = 0, 24, b""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            buf += chunk
            pos = skip
            while pos + 16 <= len(buf):
                pos += 16 + rec.unpack_from(buf, pos)[2]
                n += 1
            if pos > len(buf):  # a record's data goes on in the next chunk
                skip, buf = pos - len(buf), b""
            else:
                skip, buf = 0, buf[pos:]
    return n


def peak_rss_kb(args: list[str], pure: bool) -> int:
    env = dict(os.environ)
    env.pop("SOCKCAP_PURE", None)
    if pure:
        env["SOCKCAP_PURE"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"sockcap {' '.join(args)} failed: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
    return usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--data", type=Path, default=BENCH / "data")
    ap.add_argument("--kinds", nargs="*", default=list(COMMANDS))
    ap.add_argument("--small-suffix", default="-s")
    ap.add_argument("--command", help="the sockcap command instead of the kind's own")
    ap.add_argument("--engines", choices=("both", "compiled", "pure"), default="both")
    args = ap.parse_args()
    engines = {"both": (False, True), "compiled": (False,), "pure": (True,)}[args.engines]
    print("| command | file | engine | peak RSS |")
    print("| --- | --- | --- | ---: |")
    slopes: list[str] = []
    for kind in args.kinds:
        seen: dict[bool, list[tuple[int, int]]] = {False: [], True: []}  # (conversations, KiB)
        for suffix in (args.small_suffix, ""):
            path = args.data / f"{kind}{suffix}.pcap"
            if not path.exists():
                continue
            command = args.command.split() if args.command else COMMANDS[kind]
            for pure in engines:
                kb = peak_rss_kb([*command, str(path)], pure)
                seen[pure].append((0, kb))
                print(f"| sockcap {' '.join(command)} | {path.name} "
                      f"({path.stat().st_size / 1e6:.0f} MB) | {'pure' if pure else 'compiled'} "
                      f"| {kb / 1024:.0f} MiB |", flush=True)
        sizes = [pcap_records(args.data / f"{kind}{suffix}.pcap") // FINISHED_FRAMES
                 for suffix in (args.small_suffix, "")
                 if kind == "finished" and (args.data / f"{kind}{suffix}.pcap").exists()]
        for pure, points in seen.items():
            if len(sizes) == len(points):
                points[:] = [(n, kb) for n, (_, kb) in zip(sizes, points, strict=True)]
            if kind == "finished" and len(points) == 2 and points[0][0] != points[1][0]:
                (n1, kb1), (n2, kb2) = points
                per = (kb2 - kb1) * 1024 / (n2 - n1)
                slopes.append(f"{'pure' if pure else 'compiled'}: {per:.0f} bytes per finished "
                              f"conversation (peak RSS {kb1 / 1024:.0f} -> {kb2 / 1024:.0f} MiB, "
                              f"{n1} -> {n2} conversations)")
    for line in slopes:
        print(line)


if __name__ == "__main__":
    main()
