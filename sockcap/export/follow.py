"""``sockcap export --follow DIR --to TABLES``: every finished capture file in a folder
exported once, as a rotating capture writes them, so the tables can be queried at any
time (DuckDB, Spark) while the capture goes on all week.

A file is *finished* when no writer holds its lock (``sockcap capture`` holds an
exclusive ``flock`` on each file from before its header until it is closed:
:mod:`sockcap.pcapfile.rotation`; the kernel drops it when the writer dies, SIGKILL
included) and it has not changed for ``settle`` seconds (for files written by other
programs, which hold no lock: tcpdump's ``-z`` hook, or a copy, is safer there).

What was exported is written in a manifest in the tables' folder
(:data:`MANIFEST`: a file's path, its size, modification time and inode, its partition
and rows), replaced atomically after each file. The order of the steps makes any
interruption safe, SIGKILL included:

1. the file's parts are written under hidden names and renamed into place (a part in
   place is whole; a reader never sees half of one);
2. then the manifest records the file.

Killed before 2, the next run exports the file again, and its parts *replace* the ones
in place (one partition a file, ``capture=NAME``): nothing twice, nothing lost. A file
that changes after its export (a ring of ``-W`` files coming round, a program that
wrote on after a quiet spell) has a new identity and is exported again into its
partition. Only one follower works on a tables folder at a time (a lock next to the
manifest).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from sockcap.errors import InputError
from sockcap.export import CAPTURE_GLOBS, capture_name
from sockcap.export.job import ExportJob, JobResult, export_file
from sockcap.i18n import _
from sockcap.pcapfile.rotation import is_being_written

MANIFEST = "_sockcap_follow.json"  # a leading _: Spark and DuckDB's globs skip it
LOCK = "_sockcap_follow.lock"
MIN_SIZE = 24  # a pcap file header: anything shorter is still being made


class FollowerBusyError(InputError):
    """Another follower works on the same tables folder."""


@dataclass(frozen=True)
class FileId:
    """What tells one version of a file from another."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileId:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


def capture_files(folder: Path) -> Iterator[Path]:
    """Capture files under ``folder`` (hidden ones left out), in name order."""
    found = {p for pattern in CAPTURE_GLOBS for p in folder.rglob(pattern)}
    for path in sorted(found):
        if path.is_file() and not any(part.startswith(".") for part in
                                      path.relative_to(folder).parts):
            yield path


def is_finished(path: Path, settle: float, now: float) -> bool:
    """Whether ``path`` is whole: not locked by its writer, and quiet for ``settle`` s."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    if st.st_size < MIN_SIZE or now - st.st_mtime < settle:
        return False
    return not is_being_written(str(path))


class Follower:
    """The follower of one folder into one tables folder; see the module docstring."""

    def __init__(self, folder: str, out: str, tables: tuple[str, ...], fmt: str, *,
                 settle: float, report: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = Path(folder)
        self.out = Path(out)
        self.tables = tables
        self.fmt = fmt
        self.settle = settle
        self.report = report
        self.clock = clock
        self.manifest: dict[str, dict[str, Any]] = {}
        self._lock: IO[str] | None = None
        self._refused: set[str] = set()

    def __enter__(self) -> Follower:
        if not self.folder.is_dir():
            raise InputError(_("no such folder: {path}").format(path=self.folder))
        self.out.mkdir(parents=True, exist_ok=True)
        lock = open(self.out / LOCK, "a")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise FollowerBusyError(_("another sockcap export --follow writes to {path}")
                                    .format(path=self.out)) from None
        self._lock = lock
        self.manifest = self._load()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.close()  # the lock goes with the descriptor
            self._lock = None

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads((self.out / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise InputError(_("cannot read {path}: {error}").format(
                path=self.out / MANIFEST, error=e)) from e
        files: dict[str, dict[str, Any]] = data.get("files", {})
        return files

    def _save(self) -> None:
        """The manifest replaced whole (written, flushed to disk, renamed)."""
        tmp = self.out / f".{MANIFEST}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"version": 1, "files": self.manifest}, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.out / MANIFEST)

    def pending(self) -> list[tuple[Path, FileId]]:
        """The finished files not exported as they are now."""
        now = self.clock()
        ready = []
        for path in capture_files(self.folder):
            key = str(path.relative_to(self.folder))
            try:
                fid = FileId.of(path.stat())
            except FileNotFoundError:
                continue
            done = self.manifest.get(key)
            if done is not None and FileId(**done["id"]) == fid:
                continue
            if is_finished(path, self.settle, now):
                ready.append((path, fid))
        return ready

    def run_once(self) -> list[JobResult]:
        """Export every pending file, each recorded as soon as it is in place."""
        results = []
        owners = {v["capture"]: k for k, v in self.manifest.items()}
        for path, fid in self.pending():
            key = str(path.relative_to(self.folder))
            name = capture_name(str(path))
            if owners.get(name, key) != key:
                if key not in self._refused:
                    self._refused.add(key)
                    self.report(_("sockcap: {path}: would be capture={name} as {other} is: "
                                  "not exported").format(path=path, name=name,
                                                         other=owners[name]))
                continue
            result = export_file(ExportJob(str(path), name, str(self.out), self.tables,
                                           self.fmt))
            if result.error and not result.packets:
                self.report(_("sockcap: {path}: {error}").format(path=path, error=result.error))
            self.manifest[key] = {"id": asdict(fid), "capture": name,
                                  "packets": result.packets, "rows": result.rows,
                                  "error": result.error}
            owners[name] = key
            self._save()
            results.append(result)
        return results
