"""`sockcap show` of a file crafted against the old conversation hash, against a file of
random conversations of the same size, run side by side (median CPU time of the child,
user + system). The ratio is the figure: 1 means crafted keys cost what random ones do.

    python bench/hash_flood_bench.py [--count 100000] [--rounds 3]

The crafted keys are made by tests/test_hash_flood.py (against the unkeyed hash the
table had before: every key in one slot), the random ones from a fixed seed.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_hash_flood import _syn, colliding_addresses  # noqa: E402

from sockcap.decode.records import RawFrame  # noqa: E402
from sockcap.pcapfile.writer import write_pcap_stream  # noqa: E402


def _file(path: Path, pairs: list[tuple[bytes, bytes]]) -> None:
    out = io.BytesIO()
    write_pcap_stream(out, (RawFrame(n * 1000, 1, _syn(s, d), 74, 0)
                            for n, (s, d) in enumerate(pairs)), 1)
    path.write_bytes(out.getvalue())


def _cpu(path: Path) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "sockcap", "show", str(path)], check=True,
                   stdout=subprocess.DEVNULL, timeout=3600, env=dict(os.environ, NO_COLOR="1"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        crafted, plain = Path(tmp, "crafted.pcap"), Path(tmp, "random.pcap")
        _file(crafted, colliding_addresses(args.count))
        _file(plain, [(rng.randbytes(16), rng.randbytes(16)) for _ in range(args.count)])
        times: dict[str, list[float]] = {"crafted": [], "random": []}
        for _ in range(args.rounds):  # interleaved: both see the same load
            times["crafted"].append(_cpu(crafted))
            times["random"].append(_cpu(plain))
    c, r = statistics.median(times["crafted"]), statistics.median(times["random"])
    print(f"{args.count} SYNs: crafted {c:.2f} s, random {r:.2f} s, crafted/random {c / r:.2f}")


if __name__ == "__main__":
    main()
