"""Build of the optional compiled hot path (sockcap/_speedups.c).

``optional=True``: without a C compiler (or Python headers) the build of the extension
is skipped with a warning and the pure-Python sockcap installs and runs as before.
Everything else about the package is in pyproject.toml.

Before the build, ``scripts/engine_header.py`` writes ``sockcap/_engine_contract.h`` (the
orders, codes, bits, thresholds and record fields the C engine shares with Python, from
``sockcap/pipeline/contract.py``) when sockcap's own imports work in the interpreter that
builds; otherwise the committed header is used, which ``tests/test_engine_contract.py``
keeps current.
"""

import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup

ROOT = Path(__file__).resolve().parent
subprocess.run([sys.executable, str(ROOT / "scripts" / "engine_header.py")], cwd=ROOT,
               stderr=subprocess.DEVNULL, check=False, timeout=120)

setup(
    ext_modules=[
        Extension(
            "sockcap._speedups",
            sources=["sockcap/_speedups.c"],
            depends=["sockcap/_engine_contract.h", "sockcap/_speedups_json.h",
                     "sockcap/_speedups_color.h", "sockcap/_speedups_tcpdump.h",
                     "sockcap/_speedups_columns.h", "sockcap/_speedups_plain.h",
                     "sockcap/_speedups_packet.h", "sockcap/_speedups_explain.h",
                     "sockcap/_speedups_convcols.h", "sockcap/_speedups_spill.h",
                     "sockcap/_speedups_reuse.h"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
