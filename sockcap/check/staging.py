"""Where a sandbox's programs come from: their folders found from the command line and
copied (staged) for the sandbox, and the sandbox made for them (``check``, the pytest
fixture). Apart from :mod:`sockcap.check.sandbox`, which holds the sandbox itself: a
program's folder is found and copied once, before any sandbox starts."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from sockcap.check.cgroup import Limits
from sockcap.check.sandbox import MERGED, SYSTEM_DIRS, Sandbox, SandboxError, staging_dir
from sockcap.errors import InputError
from sockcap.i18n import _

STAGE_LIMIT = 256 << 20  # bytes a staged folder may hold


def stage(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` for a sandbox (links kept as links); SandboxError if it
    holds more than :data:`STAGE_LIMIT` bytes (a home folder given by mistake)."""
    total = 0
    for root, _dirs, files in os.walk(source):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
        if total > STAGE_LIMIT:
            raise SandboxError(_("{folder} holds more than {mb} MB: run the check from the "
                                 "folder of your program").format(folder=source,
                                                                   mb=STAGE_LIMIT >> 20))
    try:
        shutil.copytree(source, target, symlinks=True)
    except (OSError, shutil.Error) as e:
        raise SandboxError(_("cannot copy {folder} for the sandbox: {e}").format(
            folder=source, e=e)) from None


def system_path(path: Path) -> bool:
    """True for a path the sandbox shows anyway (read-only): ``/usr/bin/python3``."""
    real = path.resolve()
    return any(real.is_relative_to(Path(d).resolve()) for d in (*SYSTEM_DIRS, *MERGED)
               if os.path.exists(d))


def program_folders(programs: Sequence[Sequence[str]]) -> list[Path | None]:
    """The folders the programs come from, the server's first: the folder of each program
    (or of the script an interpreter runs: ``python3 server.py``) that is a file outside
    the system's folders; None for a program of the system's (``/bin/false``)."""
    found: dict[Path | None, None] = {}
    here = Path.cwd().resolve()
    for argv in programs:
        if not (os.path.exists(argv[0]) or ("/" not in argv[0] and shutil.which(argv[0]))):
            raise InputError(_("program not found: {argv}").format(argv=argv[0]))
        named = [Path(a).resolve().parent for a in argv[:2]
                 if os.path.isfile(a) and not system_path(Path(a))]
        # a program under the current folder (``./lab/server``) takes the current folder
        found[(here if named[0].is_relative_to(here) else named[0]) if named else None] = None
    return list(found)


@contextlib.contextmanager
def sandbox_for(programs: Sequence[Sequence[str]], limits: Limits,
                note: Callable[[str], None] = lambda _t: None,
                network: bool = True) -> Iterator[tuple[Sandbox, str]]:
    """A sandbox for programs named on the command line (``check``, the pytest fixture),
    and the folder they start in, as they see it. The sandbox works on copies of their
    folders, seen where the originals are: the server's read-write (what it writes there
    is thrown away with the copy), the others read-only; a system program gets an empty
    folder where it was started."""
    home, *others = program_folders(programs)
    here = Path.cwd().resolve()
    with tempfile.TemporaryDirectory(prefix="sockcap-check-", dir=staging_dir()) as temp:
        work, extra = Path(temp) / "work", []
        if home is None:
            home = here
            work.mkdir()
        else:
            stage(home, work)
        for n, folder in enumerate(f for f in others if f is not None and f != home):
            stage(folder, Path(temp) / f"extra{n}")
            extra.append((Path(temp) / f"extra{n}", str(folder)))
        with Sandbox(work, limits, readable=extra, at=str(home), network=network,
                     note=note) as box:
            yield box, str(here if here.is_relative_to(home) else home)
