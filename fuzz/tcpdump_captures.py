"""The captures of tests/test_tcpdump_engine.py (TCP segments with the options tcpdump
names — MPTCP, SACK, TFO, SCPS, the experiments, malformed ones — UDP, ICMP, cut frames,
times anywhere, several time zones) through both paths of ``show --style tcpdump``: the
count of inputs whose output differs. Run it under the sanitizers as fuzz/sanitize.sh runs
differential.py (the extension it loads is the one ``SOCKCAP_SANITIZED_EXTENSION`` names)::

    gcc -shared -fPIC -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all \\
        -std=c11 -I$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])') \\
        sockcap/_speedups.c -o /tmp/san/_speedups$(python -c \\
        'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1 \\
    PYTHONMALLOC=malloc SOCKCAP_SANITIZED_EXTENSION=/tmp/san/_speedups... \\
    LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \\
        .venv/bin/python fuzz/tcpdump_captures.py 1500
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "fuzz"))

from differential import show_result  # noqa: E402  (loads the sanitized build, if named)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_tcpdump_engine import ZONES, tcpdump_captures  # noqa: E402


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    counts = {"inputs": 0, "differences": 0}
    folder = tempfile.mkdtemp(prefix="sockcap-tcpdump-")
    path = os.path.join(folder, "input.pcap")

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=tcpdump_captures(), tz=st.sampled_from(ZONES),
           opts=st.sampled_from([{}, {"hex_": True}, {"lang": "id", "count": 4},
                                 {"port": 80}]))
    def one(data: bytes, tz: str, opts: dict[str, object]) -> None:
        os.environ["TZ"] = tz
        time.tzset()
        with open(path, "wb") as f:
            f.write(data)
        options = {"style": "tcpdump", **opts}
        if show_result(path, options, pure=False) != show_result(path, options, pure=True):
            counts["differences"] += 1
        counts["inputs"] += 1

    one()
    os.unlink(path)
    os.rmdir(folder)
    print(f"tcpdump captures: {counts['inputs']} inputs, {counts['differences']} differences")
    sys.exit(1 if counts["differences"] else 0)


if __name__ == "__main__":
    main()
