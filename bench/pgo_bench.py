"""The profile-guided build of the engine against the plain ``-O3`` build, side by side,
with ``tcpdump -nn`` as the anchor in the same rounds.

Usage::

    python bench/pgo_bench.py [--file bench/data/loopback-1m.pcap] [--rounds 7]

The installed extension must be the profile-guided build (``scripts/setup.sh`` makes it,
``scripts/pgo.py``). The plain build is compiled here from the same source with the same
compiler and arguments (``scripts/pgo.py``'s ``compiler()``, no profile) into a copy of the
package in a temporary directory. Each round runs every output below once on each build
and ``tcpdump -nn`` once, interleaved, output to ``/dev/null``; the figure is the median of
the rounds' CPU time (user + system, ``os.wait4``), start-up included. ``TZ=UTC``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "scripts"))
import pgo  # type: ignore[import-not-found]  # noqa: E402
from json_bench import cpu  # noqa: E402

OUTPUTS = (["show"], ["show", "--json"], ["show", "--style", "tcpdump"],
           ["show", "--color", "always"], ["--lang", "id", "show", "--hex"],
           ["show", "--explain"], ["stats"])


def plain_build(where: Path) -> Path:
    """A copy of the package with the plain build; the directory for PYTHONPATH."""
    compile_, link = pgo.compiler()
    (where / "obj").mkdir(parents=True)
    pgo.build(compile_, link, where / "obj" / "_speedups.o", where / "plain.so", [])
    tree: Path = pgo.package_copy(where / "plain", where / "plain.so")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "sockcap")],
                   check=True, timeout=300)
    return tree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-1m.pcap")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    if not pgo.is_installed():
        raise SystemExit("the installed engine is not the profile-guided build: "
                         "run scripts/setup.sh (or scripts/pgo.py) first")
    base = {k: v for k, v in os.environ.items() if not k.startswith("SOCKCAP_")}
    base.update(TZ="UTC", NO_COLOR="1", SOCKCAP_REQUIRE_EXTENSIONS="1")
    script = Path(sys.executable).with_name("sockcap")
    with tempfile.TemporaryDirectory(prefix="sockcap-pgo-bench-") as tmp:
        plain = plain_build(Path(tmp))
        builds = {"plain -O3": dict(base, PYTHONPATH=str(plain)), "profile-guided": base}
        times: dict[tuple[str, str], list[float]] = {}
        anchor: list[float] = []
        for _ in range(args.rounds):
            anchor.append(cpu(["tcpdump", "-nn", "-r", str(args.file)], base)[0])
            for output in OUTPUTS:
                for name, env in builds.items():
                    times.setdefault((" ".join(output), name), []).append(
                        cpu([str(script), *output, str(args.file)], env)[0])
        shutil.rmtree(plain, ignore_errors=True)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()
    print(f"{when}; {args.file.name}; {args.rounds} rounds; load average "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}; tcpdump -nn {statistics.median(anchor):.3f} s")
    print("| `sockcap ...` | plain -O3 CPU s | profile-guided CPU s | guided / plain "
          "| plain vs tcpdump -nn | guided vs tcpdump -nn |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    t = statistics.median(anchor)
    for output in OUTPUTS:
        key = " ".join(output)
        p, g = (statistics.median(times[(key, n)]) for n in builds)
        print(f"| `{key}` | {p:.3f} | {g:.3f} | {g / p:.2f} | {t / p:.2f}x | {t / g:.2f}x |")


if __name__ == "__main__":
    main()
