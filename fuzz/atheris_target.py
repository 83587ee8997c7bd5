"""Coverage-guided fuzzing of the same target with atheris (libFuzzer for Python).

Run through ``python fuzz/fuzz_reader.py --atheris -- [libFuzzer options]``, e.g.
``-- -runs=200000 -max_len=70000 -timeout=5 -rss_limit_mb=1024``.

The plain mutation loop in :mod:`fuzz_reader` is reproducible by input number and needs
nothing installed; this mode adds coverage feedback: the loaded modules are instrumented,
and an input that reaches new branches is kept and mutated further. The custom mutator
mixes libFuzzer's byte mutations with the structure-aware ones of :mod:`mutators`, so a
mutated file usually still gets past the file header. The seeds are the corpus's capture
files, given to libFuzzer as its starting inputs (from a temporary folder: the corpus
itself is never written to).
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
from pathlib import Path

from mutators import havoc, mutate_packet, pcap_input, pcapng_input
from seeds import CAPTURE_SUFFIXES, split_seed


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    """Half libFuzzer's own mutation, half a structure-aware one of the input as a seed."""
    import atheris  # type: ignore[import-untyped]

    rng = random.Random(seed)
    if rng.random() < 0.5:
        return bytes(atheris.Mutate(data, max_size))
    parsed = split_seed("input", data)
    strategy = rng.choice(("packet", "headers", "linktype", "structure", "cut"))
    if parsed.kind == "pcap":
        out = pcap_input(parsed, rng, strategy)
    elif parsed.kind == "pcapng":
        out = pcapng_input(parsed, rng, strategy)
    else:
        out = havoc(data, rng, []) if rng.random() < 0.5 else mutate_packet(data, rng)
    return out[:max_size]


def run_atheris(corpus: Path, libfuzzer_args: list[str]) -> None:
    import atheris
    # sockcap was imported (uninstrumented) by the command line: import it and the harness
    # afresh under instrumentation, so that coverage covers sockcap and nothing else
    for name in [m for m in sys.modules if m == "sockcap" or m.startswith("sockcap.")]:
        del sys.modules[name]
    sys.modules.pop("fuzz_reader", None)
    with atheris.instrument_imports(include=["sockcap"]):
        from fuzz_reader import check_input

    def test_one_input(data: bytes) -> None:
        check_input(data)  # DecodeError is caught inside; anything else is a crash

    # libFuzzer enforces -rss_limit_mb and -timeout itself (no SIGALRM handler here)
    with tempfile.TemporaryDirectory() as tmp:
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        for path in corpus.rglob("*"):
            if path.suffix in CAPTURE_SUFFIXES and path.is_file():
                shutil.copy(path, seeds / f"{path.parent.name}-{path.name}")
        atheris.Setup([sys.argv[0], *libfuzzer_args, str(seeds)], test_one_input,
                      custom_mutator=custom_mutator)
        atheris.Fuzz()
