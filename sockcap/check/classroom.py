"""A class graded at once: submissions in parallel, the gradebook's CSV, re-grading one.

**In parallel** (``-j N``): each submission is graded in a process of its own, forked
from the grader before any thread starts, at most N at a time; each makes its own
sandbox, exactly as when grading one after the other (its own uid, cgroup, PID namespace,
and a fresh network namespace per scenario). Why processes and not threads: a check
spends its CPU time decoding and judging packets in Python, which threads would take in
turns; and a forked child starts single-threaded, as the sandbox's ``unshare`` wants.
No port range is handed out: every scenario has a network namespace of its own, so two
submissions graded at once can both listen on 5001 (the course's fixed port) without
meeting. A child hands back its result through a pipe; one that dies leaves one line,
not a hole. Every child is stopped by its PID when the grader stops (SIGTERM, which
its sandbox's ``finally`` blocks turn into a clean exit; SIGKILL after a time limit), and
dies with the grader (``PR_SET_PDEATHSIG``).

**The gradebook** (:func:`write_grades_csv`): ``grades.csv`` is written from the
``report.json`` of every student in the output folder, so it always equals them: after
``--student NAME`` re-grades one student, the other rows are what their files say.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from sockcap.errors import ExitCode, InputError, SockcapError
from sockcap.i18n import _

STOP_SECONDS = 10.0  # after SIGTERM, how long a grading process has to clean up
PR_SET_PDEATHSIG = 1
CSV_NAME = "grades.csv"

T = TypeVar("T")
R = TypeVar("R")


class GradingError(SockcapError):
    """An error raised while grading one submission, carried back from its process."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(code)


def pick_students(folders: Sequence[Path], names: Sequence[str], where: Path) -> list[Path]:
    """The submissions named (``--student``), in the order given; InputError for a name
    that is not a folder of ``where``."""
    if not names:
        return list(folders)
    by_name = {f.name: f for f in folders}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputError(_("no submission named {name} in {folder}").format(
            name=missing[0], folder=where))
    return [by_name[n] for n in dict.fromkeys(names)]


def run_parallel(items: Sequence[T], work: Callable[[T], R], jobs: int,
                 started: Callable[[T], None] = lambda _i: None) -> list[R]:
    """``work(item)`` for every item, at most ``jobs`` at once, each in a forked process;
    the results in the items' order. A SockcapError in a child is raised here (the first
    one), once every child has stopped."""
    if jobs <= 1 or len(items) <= 1:
        out = []
        for item in items:
            started(item)
            out.append(work(item))
        return out
    context = multiprocessing.get_context("fork")
    results: dict[int, R] = {}
    pending = list(enumerate(items))
    running: dict[Connection, tuple[int, Any]] = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                index, item = pending.pop(0)
                started(item)
                reader, writer = context.Pipe(duplex=False)
                process = context.Process(target=_child, args=(work, item, writer),
                                          name=f"sockcap-grade-{index}", daemon=True)
                process.start()
                writer.close()
                running[reader] = (index, process)
            for ready in multiprocessing.connection.wait(list(running)):
                assert isinstance(ready, Connection)
                index, process = running.pop(ready)
                outcome = _receive(ready)
                process.join(STOP_SECONDS)
                if outcome[0] == "error":
                    raise GradingError(outcome[1], outcome[2])
                results[index] = outcome[1]
    finally:
        for reader, (_index, process) in running.items():
            _stop(process)
            reader.close()
    return [results[i] for i in range(len(items))]


def _receive(reader: Connection) -> tuple[Any, ...]:
    try:
        outcome: tuple[Any, ...] = reader.recv()
    except (EOFError, OSError):
        outcome = ("error", _("a grading process ended without its result"), int(ExitCode.ERROR))
    reader.close()
    return outcome


def _stop(process: Any) -> None:
    """SIGTERM to the child by its PID (its sandbox cleans up), SIGKILL after a limit."""
    if process.pid is None:
        return
    if process.is_alive():
        process.terminate()
        process.join(STOP_SECONDS)
    if process.is_alive():
        process.kill()
        process.join(STOP_SECONDS)


def _child(work: Callable[[T], R], item: T, writer: Connection) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    try:
        writer.send(("ok", work(item)))
    except SockcapError as e:
        writer.send(("error", str(e), int(e.exit_code)))
    except Exception as e:  # carried to the grader as one line
        writer.send(("error", f"{type(e).__name__}: {e}", int(ExitCode.ERROR)))
    finally:
        writer.close()


# -- the gradebook ----------------------------------------------------------------------


def grades_rows(reports: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The CSV's rows: a header (student, each test's name, total, max_score, status),
    then one row per report, the points each test scored."""
    names: dict[str, None] = {}
    for report in reports:
        for test in report["tests"]:
            names[test["name"]] = None
    rows = [["student", *names, "total", "max_score", "status"]]
    for report in sorted(reports, key=lambda r: str(r["student"])):
        scored = {t["name"]: _number(t["score"]) for t in report["tests"]}
        rows.append([str(report["student"]), *(scored.get(n, "") for n in names),
                     _number(report["score"]), _number(report["max_score"]),
                     str(report.get("status", ""))])
    return rows


def _number(value: float) -> str:
    return f"{float(value):g}"


def csv_text(rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def read_reports(out_dir: Path, single: bool) -> list[dict[str, Any]]:
    """Every student's report.json under ``out_dir`` (``out_dir/report.json`` alone for a
    single submission); an unreadable one is left out."""
    paths = [out_dir / "report.json"] if single else sorted(out_dir.glob("*/report.json"))
    reports = []
    for path in paths:
        try:
            reports.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return [r for r in reports if isinstance(r, dict) and "tests" in r]


def write_grades_csv(out_dir: Path, single: bool = False) -> Path:
    path = out_dir / CSV_NAME
    text = csv_text(grades_rows(read_reports(out_dir, single)))
    path.write_text(text, encoding="utf-8")
    os.chmod(path, 0o644)
    return path
