"""Fuzz sockcap's file reader, decoder and views: any bytes in, a timeline or a DecodeError out.

Usage::

    python fuzz/fuzz_reader.py --inputs 1000000 --workers 2 --seed 1
    python fuzz/fuzz_reader.py --sweep --workers 2          # every record at every length
    python fuzz/fuzz_reader.py --replay 12345 --seed 1 --save crash.pcap
    python fuzz/fuzz_reader.py --atheris -- -runs=100000   # coverage-guided, if installed

The promise under test (STYLE.md, "Decoding"): whatever the file holds,
:func:`check_input` ends normally or with :class:`sockcap.errors.DecodeError` (or a
subclass); nothing else escapes, and no input takes more than ``--time-limit`` seconds or
more than ``--memory-mb`` of address space. Every other outcome is a *finding*.

Inputs come from the capture corpus (``../shared/corpus/``) through :mod:`mutators`; input
``i`` of seed ``S`` is built by ``random.Random((S << 32) | i)`` alone, so any finding is
rebuilt with ``--replay i --seed S``. Workers are forked processes, each with its own
``RLIMIT_AS`` and a per-input ``SIGALRM``; a worker that dies (a segfault, the kernel's
OOM killer) is reported with the input it was on and replaced. The parent merges
findings by kind and place (exception type and innermost sockcap frame) and saves the
smallest input of each under ``--findings`` (default ``fuzz/findings/``, git-ignored).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutators import cut_record, epb_with_data, make_input
from seeds import BT_IDB, PCAPNG_SHB, Seed, load_seeds, pcap_bytes

from sockcap.analysis.summary import summary_line
from sockcap.decode import decode_frame
from sockcap.decode.records import Packet, RawFrame
from sockcap.errors import DecodeError
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.render.packets import PacketView

FUZZ = Path(__file__).resolve().parent
TIME_LIMIT = 5.0  # seconds per input; typical inputs take a few milliseconds
MEMORY_MB = 1024  # address-space limit of a worker
SWEEP_FULL = 1024  # the snap-length sweep tries every length up to this ...
SWEEP_STRIDE = 61  # ... and every 61st beyond it, plus the whole record
# (pipeline options, packet view options) of every view the fuzzer drives
VIEWS: tuple[tuple[dict[str, int], dict[str, object]], ...] = (
    ({}, {}),
    ({}, {"style": "tcpdump", "hex_": True}),
    ({}, {"json": True}),
    ({"port": 80, "limit": 5}, {"hex_": True}),
)


class InputTimeout(BaseException):
    """Raised by SIGALRM inside an input that runs over the time limit.

    A BaseException, so that no ``except Exception`` in the code under test swallows it.
    """


class Checked(NamedTuple):
    frames: int  # frames the reader delivered
    error: str  # the reader's DecodeError, "" if it read the whole file


def check_input(data: bytes) -> Checked:
    """Run ``data`` through the reader, the decoder and every view.

    As ``sockcap show`` does, the frames read before a :class:`DecodeError` from the
    reader are still decoded and rendered; the error is returned, not raised. Anything
    else that escapes (or a JSON line that does not parse) is a bug in sockcap.
    """
    frames: list[RawFrame] = []
    reader, error = None, ""
    try:
        reader = open_capture(io.BytesIO(data))
        frames.extend(reader)  # bounded: every frame is a slice of ``data``
    except DecodeError as e:
        error = f"{type(e).__name__}: {e}"
    for frame in frames:
        packet = decode_frame(frame)
        if type(packet) is not Packet:
            raise AssertionError(f"decode_frame returned {type(packet).__name__}")
    for pipe_options, view_options in VIEWS:
        pipeline = Pipeline(**pipe_options)
        view = PacketView(pipeline, **view_options)  # type: ignore[arg-type]
        for text in pipeline.map(frames, view.text):
            if view.json:
                json.loads(text)
        if not pipe_options and not view_options:
            styled = Pipeline()
            styled_view = PacketView(styled)
            for a in styled.packets(frames):
                list(styled_view.styled(a))
        summary_line(pipeline.tracker.conversations)
    if reader is not None:
        "\n".join(reader.warnings)
    return Checked(len(frames), error)


# -- inputs -----------------------------------------------------------------------------


def fuzz_input(seeds: list[Seed], seed: int, index: int) -> tuple[str, bytes]:
    return make_input(seeds, random.Random((seed << 32) | index))


def sweep_lengths(n: int) -> list[int]:
    """Every length up to SWEEP_FULL, then every SWEEP_STRIDE-th, then ``n`` itself."""
    lengths = list(range(min(n, SWEEP_FULL) + 1))
    lengths += range(SWEEP_FULL + SWEEP_STRIDE, n, SWEEP_STRIDE)
    if n > SWEEP_FULL:
        lengths.append(n)
    return lengths


def sweep_plan(seeds: list[Seed], records: int) -> Iterator[tuple[int, int, int]]:
    """The snap-length sweep as (seed, record or block, length) triples, cheap to skip.

    Each of the first ``records`` records of every seed is cut at every length; damaged
    files that do not split are cut at every length up to SWEEP_FULL instead.
    """
    for k, s in enumerate(seeds):
        if s.kind == "pcap":
            for i, r in enumerate(s.records[:records]):
                for n in sweep_lengths(len(r.data)):
                    yield k, i, n
        elif s.kind == "pcapng":
            for i in s.packet_indexes[:records]:
                for n in sweep_lengths(s.blocks[i].data_len):
                    yield k, i, n
        else:
            for n in range(min(len(s.blob), SWEEP_FULL) + 1):
                yield k, 0, n


def sweep_input(seeds: list[Seed], plan: tuple[int, int, int]) -> tuple[str, bytes]:
    """One sweep file: the record cut to ``n`` bytes, after the two records before it
    (pcapng: after the section and interface blocks before it), for the views' state."""
    k, i, n = plan
    s = seeds[k]
    if s.kind == "pcap":
        before = list(s.records[max(0, i - 2) : i])
        return (f"{s.name} record {i + 1} cut to {n}",
                pcap_bytes(s.order, s.header, [*before, cut_record(s.records[i], n)]))
    if s.kind == "pcapng":
        b = s.blocks[i]
        head = b"".join(x.raw for x in s.blocks[:i] if x.btype in (PCAPNG_SHB, BT_IDB))
        data = b.raw[b.data_off : b.data_off + b.data_len]
        return f"{s.name} block {i + 1} cut to {n}", head + epb_with_data(b, s.order, data[:n])
    return f"{s.name} cut to {n} bytes", s.blob[:n]


def sweep_inputs(seeds: list[Seed], records: int) -> Iterator[tuple[str, bytes]]:
    """Every input of the sweep, in order."""
    for plan in sweep_plan(seeds, records):
        yield sweep_input(seeds, plan)


# -- one worker -------------------------------------------------------------------------


@dataclass
class Finding:
    key: str  # exception type and where it was raised
    message: str
    index: int
    description: str
    data: bytes
    trace: str
    count: int = 1


@dataclass
class Stats:
    inputs: int = 0
    frames: int = 0
    rejected: int = 0  # inputs where the reader stopped with a DecodeError (expected)
    max_seconds: float = 0.0
    slowest: list[tuple[float, int, str]] = field(default_factory=list)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise InputTimeout()


def limit_worker(memory_mb: int) -> None:
    """Per-process caps: address space (MemoryError instead of swapping) and SIGALRM."""
    if memory_mb:
        size = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    signal.signal(signal.SIGALRM, _on_alarm)


def finding_key(exc: BaseException) -> str:
    """Type of the exception and the innermost sockcap (or harness) frame it came through."""
    where = "?"
    for fs in traceback.extract_tb(exc.__traceback__):
        if "/sockcap/" in fs.filename or fs.filename.endswith("fuzz_reader.py"):
            where = f"{Path(fs.filename).parent.name}/{Path(fs.filename).name}:{fs.lineno}"
    return f"{type(exc).__name__} at {where}"


def run_one(index: int, description: str, data: bytes, stats: Stats,
            time_limit: float) -> Finding | None:
    """Check one input under the time limit; a Finding if anything but DecodeError escaped."""
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        try:
            checked = check_input(data)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        stats.frames += checked.frames
        stats.rejected += bool(checked.error)
    except (Exception, InputTimeout) as e:  # everything else is what we look for
        message = f"{type(e).__name__}: {e}"[:300] if not isinstance(e, InputTimeout) else (
            f"over {time_limit:g} s")
        trace = "".join(traceback.format_exception(e, limit=-12))
        return Finding(finding_key(e), message, index, description, data, trace)
    finally:
        elapsed = time.perf_counter() - start
        stats.inputs += 1
        stats.max_seconds = max(stats.max_seconds, elapsed)
        if len(stats.slowest) < 5 or elapsed > stats.slowest[-1][0]:
            stats.slowest = sorted([*stats.slowest, (elapsed, index, description)],
                                   reverse=True)[:5]
    return None


def worker(wid: int, args: dict[str, Any], start: int, queue: Any, current: Any) -> None:
    """Inputs ``start``, ``start + workers``, ... below ``args['stop']``; reports by queue."""
    limit_worker(args["memory_mb"])
    seeds = load_seeds(Path(args["corpus"]))
    stats, sent = Stats(), time.monotonic()
    inputs: Iterator[tuple[int, tuple[str, bytes]]]
    if args["sweep"]:
        plans = enumerate(sweep_plan(seeds, args["sweep_records"]))
        inputs = ((i, sweep_input(seeds, plan)) for i, plan in plans
                  if i >= start and (i - start) % args["workers"] == 0)
    else:
        inputs = ((i, fuzz_input(seeds, args["seed"], i))
                  for i in range(start, args["stop"], args["workers"]))
    for i, (description, data) in inputs:
        if i >= args["stop"]:
            break
        current.value = i
        finding = run_one(i, description, data, stats, args["time_limit"])
        if finding is not None:
            queue.put(("finding", wid, finding))
        if time.monotonic() - sent > 2:
            queue.put(("stats", wid, stats))
            stats, sent = Stats(), time.monotonic()
    queue.put(("stats", wid, stats))
    queue.put(("done", wid, None))


# -- the parent -------------------------------------------------------------------------


@dataclass
class Run:
    stats: Stats = field(default_factory=Stats)
    findings: dict[str, Finding] = field(default_factory=dict)
    deaths: int = 0

    def add_stats(self, s: Stats) -> None:
        t = self.stats
        t.inputs += s.inputs
        t.frames += s.frames
        t.rejected += s.rejected
        t.max_seconds = max(t.max_seconds, s.max_seconds)
        t.slowest = sorted([*t.slowest, *s.slowest], reverse=True)[:5]

    def add_finding(self, f: Finding) -> None:
        old = self.findings.get(f.key)
        if old is None:
            self.findings[f.key] = f
            print(f"\nFINDING {f.key}: {f.message} (input {f.index}: {f.description})",
                  file=sys.stderr, flush=True)
            return
        old.count += 1
        if len(f.data) < len(old.data):  # keep the smallest reproducer
            f.count = old.count
            self.findings[f.key] = f


def run_parallel(args: dict[str, Any]) -> Run:
    """Fork ``workers`` processes; replace any that dies, skipping the input it died on."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    run, procs, started = Run(), {}, time.monotonic()
    for wid in range(args["workers"]):
        procs[wid] = _spawn(ctx, wid, args, args["start"] + wid, queue)
    last = 0.0
    while procs:
        try:
            kind, wid, payload = queue.get(timeout=1)
        except Exception:  # queue.Empty: check for dead workers
            kind = ""
        if kind == "stats":
            run.add_stats(payload)
        elif kind == "finding":
            run.add_finding(payload)
        elif kind == "done":
            procs.pop(wid)[0].join()
        for wid, (proc, current) in list(procs.items()):
            if not proc.is_alive() and proc.exitcode not in (0, None):
                run.deaths += 1
                i = current.value
                description, data = _rebuild(args, i)
                run.add_finding(Finding(f"worker died ({proc.exitcode})", "", i,
                                        description, data, ""))
                procs[wid] = _spawn(ctx, wid, args, i + args["workers"], queue)
        if time.monotonic() - last > 10:
            last = time.monotonic()
            rate = run.stats.inputs / max(last - started, 1e-9)
            print(f"{run.stats.inputs:,} inputs, {rate:,.0f}/s, {len(run.findings)} findings",
                  file=sys.stderr, flush=True)
    return run


def _spawn(ctx: Any, wid: int, args: dict[str, Any], start: int, queue: Any) -> Any:
    current = ctx.Value("q", start)
    proc = ctx.Process(target=worker, args=(wid, args, start, queue, current), daemon=True)
    proc.start()
    return proc, current


def _rebuild(args: dict[str, Any], index: int) -> tuple[str, bytes]:
    seeds = load_seeds(Path(args["corpus"]))
    if args["sweep"]:
        for i, plan in enumerate(sweep_plan(seeds, args["sweep_records"])):
            if i == index:
                return sweep_input(seeds, plan)
        return "", b""
    return fuzz_input(seeds, args["seed"], index)


def save_findings(run: Run, folder: Path) -> list[str]:
    """Write each finding's input to ``folder``; one summary line per finding."""
    lines = []
    for n, f in enumerate(sorted(run.findings.values(), key=lambda f: f.key)):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"finding-{n:02d}-input-{f.index}.pcap"
        path.write_bytes(f.data)
        (folder / f"{path.stem}.txt").write_text(f"{f.key}\n{f.description}\n\n{f.trace}")
        lines.append(f"- `{f.key}`: {f.message} ({f.count} inputs; first {f.index}: "
                     f"{f.description}; {len(f.data)} bytes, {path})")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--inputs", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="first input number")
    ap.add_argument("--sweep", action="store_true", help="the snap-length sweep instead")
    ap.add_argument("--sweep-records", type=int, default=1 << 30,
                    help="records per seed file in the sweep")
    ap.add_argument("--time-limit", type=float, default=TIME_LIMIT)
    ap.add_argument("--memory-mb", type=int, default=MEMORY_MB)
    ap.add_argument("--corpus", type=Path, default=FUZZ.parent.parent / "shared" / "corpus")
    ap.add_argument("--findings", type=Path, default=FUZZ / "findings")
    ap.add_argument("--replay", type=int, help="rebuild and check one input")
    ap.add_argument("--save", type=Path, help="with --replay: write the input here")
    ap.add_argument("--atheris", action="store_true", help="coverage-guided (needs atheris)")
    ap.add_argument("rest", nargs="*", help="after --: libFuzzer options for --atheris")
    a = ap.parse_args()
    args = {"inputs": a.inputs, "workers": a.workers, "seed": a.seed, "sweep": a.sweep,
            "sweep_records": a.sweep_records, "time_limit": a.time_limit,
            "memory_mb": a.memory_mb, "corpus": str(a.corpus), "start": a.start,
            "stop": a.start + a.inputs if not a.sweep else 1 << 62}
    if a.replay is not None:
        replay(args, a.replay, a.save)
    elif a.atheris:
        from atheris_target import run_atheris

        run_atheris(a.corpus, a.rest)
    else:
        report(args, a)


def replay(args: dict[str, Any], index: int, save: Path | None) -> None:
    description, data = _rebuild(args, index)
    print(f"input {index}: {description} ({len(data)} bytes)")
    if save:
        save.write_bytes(data)
    frames, error = check_input(data)
    print(f"{frames} frames read{', then ' + error if error else ''}; no finding")


def report(args: dict[str, Any], a: argparse.Namespace) -> None:
    started = time.monotonic()
    run = run_parallel(args)
    seconds = time.monotonic() - started
    s = run.stats
    what = "snap-length sweep" if a.sweep else f"mutation inputs (seed {a.seed})"
    print(f"{s.inputs:,} {what} in {seconds:.0f} s ({s.inputs / seconds:,.0f}/s,"
          f" {a.workers} workers): {s.frames:,} frames read, {s.rejected:,} files rejected"
          f" with a DecodeError, {len(run.findings)} findings, {run.deaths} worker deaths;"
          f" slowest input {s.max_seconds * 1000:.0f} ms")
    for secs, index, description in s.slowest:
        print(f"  slow: {secs * 1000:.0f} ms input {index} ({description})")
    for line in save_findings(run, a.findings):
        print(line)
    sys.exit(1 if run.findings else 0)


if __name__ == "__main__":
    main()
