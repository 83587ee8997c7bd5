"""Several capture files exported at once, up to the machine's cores: this process and
``workers - 1`` more, one file each at a time.

This process takes a file itself, the next not yet started, whenever it is free; the
worker processes are handed the others one at a time as they finish theirs. Each worker
runs :func:`~sockcap.export.job.export_file` for one file and adds the packets it reads to
one shared counter; this process, between its own file's batches (every
:data:`~sockcap.export.rows.PROGRESS_EVERY` packets) or twice a second when it has none,
collects what the workers finished, hands them the next files, and shows the progress
(files done, packets, packets per second) on a terminal. One file, or ``jobs=1``, runs in
this process alone: no process to start, the same code.

Why this process works too (issue 23): it was idle while ``jobs`` workers ran, and each
worker is a new interpreter (``spawn``: no fork of a process holding open files) that
imports sockcap, the engine and pyarrow again, ~0.2 CPU s on the bench's machine. With two
files and ``-j 2`` that is one such start instead of two, and this process starts its
file at once rather than after spawning; the files are handed out one at a time (not all
queued at the start) so that whoever is free takes the next one.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from sockcap.export.job import ExportJob, JobResult, export_file

POLL_SECONDS = 0.5

Progress = Callable[[int, int, int, float], None]  # files done, files, packets, seconds

_counter: Any = None  # the shared packet counter, in a worker process


def _init_worker(counter: Any) -> None:
    global _counter
    _counter = counter


def _count(n: int) -> None:
    with _counter.get_lock():
        _counter.value += n


def _work(job: ExportJob) -> JobResult:
    return export_file(job, _count)


def default_jobs(files: int) -> int:
    return max(1, min(files, os.cpu_count() or 1))


def run_jobs(jobs: Sequence[ExportJob], workers: int, progress: Progress) -> list[JobResult]:
    """Export every job; results in the jobs' order."""
    start = time.monotonic()
    if workers <= 1 or len(jobs) <= 1:
        return _run_here(jobs, progress, start)
    ctx = multiprocessing.get_context("spawn")  # no fork of a parent holding open files
    counter = ctx.Value("q", 0)
    results: dict[int, JobResult] = {}
    todo = deque(enumerate(jobs))
    running: dict[Future[JobResult], int] = {}
    here = 0  # packets read by the files exported in this process
    shown = 0.0

    spare = min(workers, len(jobs)) - 1  # worker processes beside this one
    with ProcessPoolExecutor(max_workers=spare, mp_context=ctx, initializer=_init_worker,
                             initargs=(counter,)) as pool:

        def collect(timeout: float) -> None:
            """The workers' finished files in, the next files out to them."""
            if running:
                done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                for f in done:
                    results[running.pop(f)] = f.result()
            while todo and len(running) < spare:
                i, job = todo.popleft()
                running[pool.submit(_work, job)] = i

        def show(force: bool = False) -> None:
            nonlocal shown
            now = time.monotonic()
            if force or now - shown >= POLL_SECONDS:
                shown = now
                progress(len(results), len(jobs), counter.value + here, now - start)

        def count(n: int) -> None:  # this process' file's progress
            nonlocal here
            here += n
            collect(0)
            show()

        collect(0)
        while todo:
            i, job = todo.popleft()
            results[i] = export_file(job, count)
            collect(0)
            show(force=True)
        while running:
            collect(POLL_SECONDS)
            show(force=True)
    return [results[i] for i in range(len(jobs))]


def _run_here(jobs: Sequence[ExportJob], progress: Progress, start: float) -> list[JobResult]:
    results: list[JobResult] = []
    total = 0
    last = 0.0

    def count(n: int) -> None:
        nonlocal total, last
        total += n
        now = time.monotonic()
        if now - last >= POLL_SECONDS:
            last = now
            progress(len(results), len(jobs), total, now - start)

    for job in jobs:
        results.append(export_file(job, count))
        progress(len(results), len(jobs), total, time.monotonic() - start)
    return results
