"""Two versions of sockcap side by side: is a change slower at show, follow or stats?

Usage::

    python bench/compare_bench.py --base REV [--head REV] [--file F] [--rounds 3] [--stream N]
                                  [--views] [--only show]

Each ``REV`` (a commit) is checked out into a temporary worktree and run with this same
interpreter through ``PYTHONPATH``; without ``--head`` the working tree is the other side. Each round runs
every command of both sides and the anchors (``tcpdump -nn`` with ``TZ=UTC``, ``tshark -q
-z conv,tcp``) one after the other, output to ``/dev/null``, rounds interleaved so both
sides see the same load; the figure per command is the median of the rounds' CPU time
(user + system of the child, less sensitive than wall time to the shared machine), and
the ratio head/base beside it. The anchors' medians show how loaded the machine was.

Each checked-out side gets its own build of the compiled engine (``sockcap/_speedups.c``,
with ``gcc`` and the flags of setup.py, in place), so both sides run the compiled path;
``--pure`` runs both with ``SOCKCAP_PURE=1`` instead (the pure twin against itself).
``--views`` adds the views the engine hands each packet to (JSON, tcpdump's notation,
``--filters``, ``--explain``; colour is written only on a terminal, not measured here).

Each side runs in its own tree as the working directory: ``python -m sockcap`` puts the
working directory first on ``sys.path``, before ``PYTHONPATH``, so run from this
repository's root both sides would otherwise import the working tree's sockcap (figures
of this script before 2026-12-06 22:25 UTC compared the working tree with itself).
"""

from __future__ import annotations

import argparse
import datetime
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def run(argv: list[str], env: dict[str, str], cwd: str | None = None) -> float:
    """CPU seconds (user + system) of one run of ``argv`` in ``cwd``, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                   check=False, timeout=900, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def build_extension(tree: str) -> None:
    """The compiled engine of a checked-out tree, built in place as setup.py builds it."""
    import sysconfig

    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O3", "-std=c11", "-Wall",
                    "-Wno-missing-field-initializers", "-I", sysconfig.get_paths()["include"],
                    f"{tree}/sockcap/_speedups.c", "-o", f"{tree}/sockcap/_speedups{suffix}"],
                   check=True, timeout=600)


def compile_bytecode(tree: str) -> None:
    """Every module of a side compiled once, as scripts/setup.sh does for an install: where
    PYTHONDONTWRITEBYTECODE is set, a side without its .pyc files would compile each
    module it imports again in every run (tens of ms of start-up on one side only)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", f"{tree}/sockcap"],
                   stdout=subprocess.DEVNULL, check=True, timeout=600)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--base", required=True, help="the commit to compare against")
    ap.add_argument("--head", default=None, help="the commit to measure (default: the working tree)")
    ap.add_argument("--only", action="append", default=[], help="only the commands named so")
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stream", type=int, default=14, help="the stream follow reads")
    ap.add_argument("--pure", action="store_true", help="both sides on the pure path")
    ap.add_argument("--views", action="store_true",
                    help="also the views handed a packet at a time (--json, --style tcpdump, "
                         "--filters, --explain)")
    args = ap.parse_args()
    path = str(args.file.resolve())
    with tempfile.TemporaryDirectory(prefix="sockcap-base-") as tmp:
        trees = {"base": args.base, **({"head": args.head} if args.head else {})}
        sides = {"head": str(ROOT)}
        for side, rev in trees.items():
            sides[side] = str(Path(tmp) / side)
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                            sides[side], rev], check=True)
            build_extension(sides[side])
        for tree in sides.values():
            compile_bytecode(tree)
        try:
            commands = {
                "show": ["show", path],
                "show --hex": ["show", "--hex", path],
                "stats": ["stats", path],
                f"follow --raw --stream {args.stream}": ["follow", "--raw", "--stream",
                                                          str(args.stream), path],
            }
            if args.views:
                commands.update({f"show {v}": ["show", *v.split(), path] for v in (
                    "--json", "--style tcpdump", "--filters", "--explain")})
            anchors = {"tcpdump -nn (TZ=UTC)": ["tcpdump", "-nn", "-r", path],
                       "tshark -q -z conv,tcp": ["tshark", "-q", "-z", "conv,tcp", "-r", path]}
            if args.only:
                commands = {k: v for k, v in commands.items() if k.split()[0] in args.only}
            times: dict[str, list[float]] = {}
            for _round in range(args.rounds):
                for name, tail in commands.items():
                    for side, tree in sorted(sides.items()):
                        env = {**os.environ, "PYTHONPATH": tree, "TZ": "UTC",
                               "SOCKCAP_PURE": "1" if args.pure else ""}
                        # run in the side's tree: ``python -m`` puts the working directory
                        # first on sys.path, before PYTHONPATH, so run from another
                        # checkout both sides would be that checkout
                        times.setdefault(f"{side}: sockcap {name}", []).append(
                            run([sys.executable, "-m", "sockcap", *tail], env, cwd=tree))
                for name, argv in anchors.items():
                    times.setdefault(name, []).append(run(argv, {**os.environ, "TZ": "UTC"}))
        finally:
            for side in trees:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                sides[side]], check=False)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = f" --head {args.head}" if args.head else ""
    only = "".join(f" --only {o}" for o in args.only) + (" --pure" if args.pure else "")
    only += " --views" if args.views else ""
    print(f"`python bench/compare_bench.py --base {args.base}{head}{only} --rounds {args.rounds}`, "
          f"{stamp}, {args.file.name}; median CPU seconds of {args.rounds} interleaved rounds\n")
    print("| command | base | head | head / base |")
    print("| --- | ---: | ---: | ---: |")
    for name in commands:
        b = statistics.median(times[f"base: sockcap {name}"])
        h = statistics.median(times[f"head: sockcap {name}"])
        print(f"| `sockcap {name}` | {b:.2f} | {h:.2f} | {h / b:.3f} |")
    for name in anchors:
        print(f"| `{name}` (anchor) | {statistics.median(times[name]):.2f} | | |")


if __name__ == "__main__":
    main()
