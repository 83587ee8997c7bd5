"""Build of the optional compiled hot path (sockcap/_speedups.c).

``optional=True``: without a C compiler (or Python headers) the build of the extension
is skipped with a warning and the pure-Python sockcap installs and runs as before.
Everything else about the package is in pyproject.toml.

Before the build, ``scripts/engine_header.py`` writes ``sockcap/_engine_contract.h`` (the
orders, codes, bits, thresholds and record fields the C engine shares with Python, from
``sockcap/pipeline/contract.py``) when sockcap's own imports work in the interpreter that
builds; otherwise the committed header is used, which ``tests/test_engine_contract.py``
keeps current.

The sources and compiler arguments are in ``scripts/extension.py``, which
``scripts/pgo.py`` reads too when it builds the engine again guided by a profile.
"""

import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))
import extension  # noqa: E402  (scripts/extension.py: the sources and arguments, shared)

subprocess.run([sys.executable, str(ROOT / "scripts" / "engine_header.py")], cwd=ROOT,
               stderr=subprocess.DEVNULL, check=False, timeout=120)

setup(
    ext_modules=[
        Extension(extension.NAME, sources=extension.SOURCES, depends=extension.DEPENDS,
                  extra_compile_args=extension.COMPILE_ARGS, optional=True)
    ]
)
