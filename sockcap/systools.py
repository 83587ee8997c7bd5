"""Where the system tools sockcap starts live: the edge that finds them.

Debian and Ubuntu install ``ip``, ``tc``, ``nft`` and ``setcap`` in ``/usr/sbin`` (and
``/sbin``), which an ordinary user's login PATH leaves out; ``sudo`` adds them (its
``secure_path``), a plain shell does not. A tool is therefore looked for on PATH first,
then in the system directories, so ``sockcap lab`` started as root from such a shell finds
``/usr/sbin/nft`` instead of telling the user to install what is already there.
"""

from __future__ import annotations

import shutil

SYSTEM_DIRS = "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"


def find_tool(name: str) -> str | None:
    """The path of the program ``name``: on PATH, else in SYSTEM_DIRS; None if neither."""
    return shutil.which(name) or shutil.which(name, path=SYSTEM_DIRS)
