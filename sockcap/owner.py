"""Who owns what sockcap creates: under sudo, the user who ran sudo.

A student runs ``sudo sockcap run --capture`` because capturing needs root, yet the pcap
file is theirs, to open in Wireshark or with ``sockcap show`` as themselves. So when
sockcap runs as root (effective uid 0) and sudo has set ``SUDO_UID`` and ``SUDO_GID``,
every file and folder it creates for the user is given to that user: the ``captures/``
folder, the pcap files of ``run --capture``
and ``capture -w``, and the files of ``follow --raw --out DIR`` (and ``DIR``). The mode is
left as created (0600 for a pcap file: readable by its new owner only).

- The owner changes right after creation, on the open file descriptor (``fchown``), so an
  interrupted run never leaves a root-owned file behind.
- Only what sockcap itself creates changes owner. A file that existed before (overwritten
  with ``--force``) or a folder that existed before keeps its owner, whoever it is: sockcap
  never takes a file from one user to give it to another.
- Where: a missing folder is bad input (:func:`check_output_path`); the one folder sockcap
  makes on its own is ``captures/``, and a folder named as an output (``follow --raw --out
  DIR``, ``lab --out DIR``) is made when the folder it goes in exists.
- Not root (``sudo -u someone``, capabilities, plain runs), no ``SUDO_UID``/``SUDO_GID``,
  or values that are not plain numbers: nothing changes owner.
- If the change fails (a file system without owners, NFS squashing root), the file is kept
  as it is and one warning is said; the capture is never lost for it.

:func:`sudo_user` is also whom ``capture -- COMMAND`` runs the command as.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sockcap.errors import InputError
from sockcap.i18n import _

CREATE_ATTEMPTS = 3  # a file removed between "it exists" and opening it is created again
CAPTURES = "captures"  # the one folder sockcap creates on its own (the default outputs' home)


def check_output_path(path: str | os.PathLike[str], *, force: bool = True) -> None:
    """The one rule for every output path (a file, or a folder sockcap fills): the folder
    it goes in must exist, or be a ``captures/`` folder in one that does (the one folder
    sockcap creates). Otherwise InputError (exit 2), said before anything starts: sockcap
    never makes a typo'd path's folders, as root least of all. Without ``force`` a file
    that exists is OutputExistsError, said as early."""
    from sockcap.errors import OutputExistsError

    target = Path(path)
    if not force and target.exists():
        raise OutputExistsError(_("{path} exists; use --force to overwrite").format(path=target))
    parent = target.parent
    if parent.is_dir():
        return
    if parent.name == CAPTURES and parent.parent.is_dir() and not parent.exists():
        return
    if parent.exists():
        raise InputError(_("cannot write {path}: {folder} is not a folder").format(
            path=target, folder=parent))
    raise InputError(_("cannot write {path}: no such folder {folder} (create it first; the "
                       "one folder sockcap makes itself is captures/)").format(
        path=target, folder=parent))


@dataclass(frozen=True, slots=True)
class SudoUser:
    uid: int
    gid: int  # the user's primary group, as sudo says


def sudo_user() -> SudoUser | None:
    """The user who ran sudo, trusted only when running as root; None otherwise."""
    if os.geteuid() != 0:
        return None
    uid, gid = _id(os.environ.get("SUDO_UID")), _id(os.environ.get("SUDO_GID"))
    if uid is None or gid is None:
        return None
    return SudoUser(uid, gid)


def _id(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() else None


def create_file(path: str | os.PathLike[str], mode: int, *, replace: bool) -> tuple[int, bool]:
    """Open ``path`` for writing; returns the descriptor and whether this call created it.

    A new file is created with ``mode`` (``O_EXCL``); if one exists, FileExistsError unless
    ``replace``, in which case the existing file is truncated and keeps its owner.
    """
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), True
        except FileExistsError:
            if not replace:
                raise
        try:
            return os.open(path, os.O_WRONLY | os.O_TRUNC), False
        except FileNotFoundError:
            if attempt == CREATE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class Owner:
    """Gives each file or folder sockcap creates to the user who ran sudo (if any).

    ``warn`` gets one line the first time a change of owner fails (later failures are
    the same story and are not repeated).
    """

    def __init__(self, warn: Callable[[str], None] | None = None) -> None:
        self.user = sudo_user()
        self._warn = warn
        self._warned = False

    def give(self, target: int | str | os.PathLike[str], name: str | os.PathLike[str]) -> None:
        """Give a file just created (its open descriptor, or a path, not followed if a
        symlink) to the user who ran sudo; on failure warn, never raise."""
        if self.user is None:
            return
        try:
            if isinstance(target, int):
                os.fchown(target, self.user.uid, self.user.gid)
            else:
                os.chown(target, self.user.uid, self.user.gid, follow_symlinks=False)
        except OSError as exc:
            if self._warn is not None and not self._warned:
                self._warned = True
                self._warn(f"warning: cannot give {os.fspath(name)} to uid {self.user.uid} (who"
                           f" ran sudo): {exc.strerror or exc}; what sockcap saves stays root's")

    def make_folder(self, folder: Path) -> None:
        """``folder.mkdir(parents=True, exist_ok=True)``; each folder it creates is given."""
        if not folder.parent.is_dir() and folder.parent != folder:
            self.make_folder(folder.parent)
        try:
            folder.mkdir()
        except FileExistsError:
            if not folder.is_dir():
                raise
            return  # it existed (or someone else just made it): not ours to give
        self.give(folder, folder)
