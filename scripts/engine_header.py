"""Write sockcap/_engine_contract.h from sockcap/pipeline/contract.py (the C engine's
orders, codes, flag bits, thresholds, record fields and templates, named once in Python).

    python scripts/engine_header.py           write the header
    python scripts/engine_header.py --check   exit 1 when the header is stale

``setup.py`` runs it before building the extension (when sockcap's own imports work in the
build's interpreter; else the committed header is used, which the tests keep current).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from sockcap.pipeline.contract import HEADER, c_header

    path = ROOT / HEADER
    text = c_header()
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    if "--check" in argv:
        if current != text:
            print(f"{HEADER} is stale: run python scripts/engine_header.py", file=sys.stderr)
            return 1
        return 0
    if current != text:
        path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
