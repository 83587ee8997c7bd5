"""A short run of the decoder fuzzer (fuzz/fuzz_reader.py) as part of the normal tests.

The long run (a million inputs, issue #6) is done by hand and recorded in
bench/FUZZ_RESULTS.md; here a fixed-seed slice of the same inputs and a snap-length sweep
over a few corpus files keep the promise checked on every change: any bytes give a
timeline or a DecodeError, never another exception, within the time limit.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, needs_corpus

sys.path.insert(0, str(ROOT / "fuzz"))

import fuzz_reader
from conftest import never_engine
from fuzz_reader import Stats, fuzz_input, run_one, sweep_input, sweep_plan
from seeds import Seed, load_seeds, split_seed

pytestmark = [*never_engine(), needs_corpus]

SHORT_RUN = 1500  # inputs; a few seconds
SEED = 20240606
SWEEP_FILES = (
    "adversarial/control-valid-echo.pcap",
    "public/tcp-handshake-nano.pcap",
    "public/LINKTYPE_RAW_ipv6.pcap",
    "public/802.1ad_QinQ.pcap",
    "public/mptcp-dss-oobr.pcap",
    "public/bgp-enhanced-route-refresh-subtype.pcapng",
)


@pytest.fixture(scope="module")
def seeds() -> list[Seed]:
    return load_seeds(CORPUS)


def _failures(inputs: list[tuple[int, str, bytes]], time_limit: float = 5.0) -> list[str]:
    fuzz_reader.limit_worker(0)  # the SIGALRM time limit only; no address-space cap here
    stats = Stats()
    found = [run_one(i, description, data, stats, time_limit)
             for i, description, data in inputs]
    return [f"input {f.index} ({f.description}): {f.key}\n{f.trace}" for f in found if f]


def test_short_fuzz_run(seeds: list[Seed]) -> None:
    inputs = [(i, *fuzz_input(seeds, SEED, i)) for i in range(SHORT_RUN)]
    assert _failures(inputs) == []


@pytest.mark.parametrize("name", SWEEP_FILES)
def test_snaplen_sweep(name: str) -> None:
    path = CORPUS / name
    seed = split_seed(name, path.read_bytes())
    assert seed.kind in ("pcap", "pcapng")
    plans = list(sweep_plan([seed], records=12))
    assert len(plans) > 50
    inputs = [(i, *sweep_input([seed], plan)) for i, plan in enumerate(plans)]
    assert _failures(inputs) == []


def test_inputs_are_rebuilt_from_their_number(seeds: list[Seed]) -> None:
    assert fuzz_input(seeds, SEED, 1234) == fuzz_input(seeds, SEED, 1234)
    assert fuzz_input(seeds, SEED, 1234) != fuzz_input(seeds, SEED, 1235)


def test_harness_reports_escapes_and_slow_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness itself: an exception other than DecodeError, and an input over the
    time limit, are both findings (the check function is replaced, not the network)."""
    def escapes(data: bytes) -> fuzz_reader.Checked:
        raise IndexError("index out of range")

    def hangs(data: bytes) -> fuzz_reader.Checked:
        time.sleep(5)
        raise AssertionError("not interrupted")

    fuzz_reader.limit_worker(0)
    monkeypatch.setattr(fuzz_reader, "check_input", escapes)
    found = run_one(0, "x", b"", Stats(), 5.0)
    assert found is not None and found.key.startswith("IndexError")
    monkeypatch.setattr(fuzz_reader, "check_input", hangs)
    found = run_one(1, "y", b"", Stats(), 0.2)
    assert found is not None and found.key.startswith("InputTimeout")


def test_damaged_file_is_a_decode_error_not_a_finding() -> None:
    checked = fuzz_reader.check_input(b"\xd4\xc3\xb2\xa1" + b"\0" * 10)
    assert checked.frames == 0 and checked.error.startswith("CaptureFileError")
    assert Path(fuzz_reader.__file__).parent.name == "fuzz"
