"""Several capture files exported at once, one process each, up to the machine's cores.

Each worker runs :func:`~sockcap.export.job.export_file` for one file and adds the
packets it reads to one shared counter; the parent polls the jobs twice a second and
shows the progress (files done, packets, packets per second) on a terminal. One file,
or ``jobs=1``, runs in this process: no process to start, the same code.
"""

from __future__ import annotations

import multiprocessing
import os
import time
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
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(counter,)) as pool:
        futures: dict[Future[JobResult], int] = {pool.submit(_work, job): i
                                                 for i, job in enumerate(jobs)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for f in done:
                results[futures[f]] = f.result()
            progress(len(results), len(jobs), counter.value, time.monotonic() - start)
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
