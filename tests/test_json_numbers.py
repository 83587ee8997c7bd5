"""The numbers of ``show --json`` the compiled engine writes with its own arithmetic, held
to CPython's over millions of doubles: ``ts`` (``repr(ts_ns / 1e9)``, found with 128-bit
integers instead of dtoa) and ``time`` (``repr(round(d / 1e9, 9))``, the difference's own
digits below 2**22 s). ``tests/c/json_numbers.c`` is compiled against the engine's source
and libpython (a real C program, as the engine is built) and compares each value with
``PyOS_double_to_string`` and ``float.__round__``; tests/test_engine_json.py checks the same
keys end to end through both twins.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import ROOT, never_engine

pytestmark = never_engine()


def test_engine_numbers_are_pythons(tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    exe = tmp_path / "json_numbers"
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION")
    libs = (sysconfig.get_config_var("LIBS") or "").split()
    build = subprocess.run(
        ["gcc", "-O2", "-std=c11", "-I", sysconfig.get_paths()["include"], "-I",
         str(ROOT / "sockcap"), str(ROOT / "tests" / "c" / "json_numbers.c"), "-o", str(exe),
         f"-L{libdir}", f"-Wl,-rpath,{libdir}", f"-lpython{version}", *libs, "-lm"],
        capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stderr
    env = {"PYTHONHOME": sys.base_prefix, "PATH": "/usr/bin:/bin"}
    for seed in ("1", "23"):
        run = subprocess.run([str(exe), "1000000", seed], capture_output=True, text=True,
                             timeout=600, env=env, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.rstrip().endswith("bad 0") and "checked " in run.stdout
