"""The C echo programs of tests/c/, compiled with gcc: a correct pair and planted bugs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

C_DIR = Path(__file__).resolve().parent / "c"
VARIANTS = ("", "BUG_NUL", "BUG_NO_EOF", "BUG_RST", "BUG_SINGLE", "BUG_BACKLOG")
HAVE_GCC = shutil.which("gcc") is not None


def build_programs(folder: Path) -> dict[str, Path]:
    """``{"server": ..., "server-BUG_NUL": ..., "client": ...}`` compiled into ``folder``."""
    out: dict[str, Path] = {}
    for variant in VARIANTS:
        name = f"server-{variant}" if variant else "server"
        target = folder / name
        defines = [f"-D{variant}"] if variant else []
        subprocess.run(["gcc", "-O1", "-Wall", *defines, "-o", str(target),
                        str(C_DIR / "echo_server.c")], check=True, timeout=60)
        out[name] = target
    out["client"] = folder / "client"
    subprocess.run(["gcc", "-O1", "-Wall", "-o", str(out["client"]), str(C_DIR / "echo_client.c")],
                   check=True, timeout=60)
    return out
