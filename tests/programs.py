"""The C echo programs of tests/c/, compiled with gcc: a correct pair and planted bugs, and
the servers whose faults only a careful judge sees (tests/c/judging_server.c)."""

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


CLIENT_VARIANTS = ("BUG_NO_CLOSE", "BUG_RST_CLOSE", "BUG_ONE_READ", "BUG_IGNORE_CLOSE",
                   "BUG_SILENT", "BUG_NO_NEWLINE", "BUG_FIRST_LINE", "BUG_SEND_NUL")


def build_clients(folder: Path) -> dict[str, Path]:
    """``{"client": ..., "client-BUG_ONE_READ": ...}``: the echo client and its planted bugs."""
    out: dict[str, Path] = {}
    for variant in ("", *CLIENT_VARIANTS):
        name = f"client-{variant}" if variant else "client"
        out[name] = folder / name
        defines = [f"-D{variant}"] if variant else []
        subprocess.run(["gcc", "-O1", "-Wall", *defines, "-o", str(out[name]),
                        str(C_DIR / "echo_client.c")], check=True, timeout=60)
    return out


JUDGING = {"closes-after-first": "CLOSE_AFTER=1", "closes-after-third": "CLOSE_AFTER=3", "lines": "LINES",
           "slow-close": "SLOW_CLOSE=2", "idle-no-close": "IDLE_NO_CLOSE",
           "case-second": "CASE_SECOND",
           "udp-echo": "UDP_ECHO", "udp-wrong-source": "UDP_WRONG_SOURCE",
           "udp-wrong-dest": "UDP_WRONG_DEST", "split-reply": "SPLIT_REPLY"}


def build_judging_servers(folder: Path) -> dict[str, Path]:
    """``{"closes-after-first": ..., "udp-wrong-source": ...}`` compiled into ``folder``."""
    out: dict[str, Path] = {}
    for name, define in JUDGING.items():
        out[name] = folder / name
        subprocess.run(["gcc", "-O1", "-Wall", f"-D{define}", "-o", str(out[name]),
                        str(C_DIR / "judging_server.c")], check=True, timeout=60)
    return out
