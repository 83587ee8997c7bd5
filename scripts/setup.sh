#!/usr/bin/env bash
# Set up sockcap on a fresh Debian/Ubuntu machine (or WSL), then run it or its tests.
#
#   bash scripts/setup.sh run      set up, then `sockcap run --capture` (sudo for the capture)
#   bash scripts/setup.sh test     set up, then the test suite
#   bash scripts/setup.sh          set up only
#
# Installs the system tools the project uses (tshark, dumpcap, tcpdump, socat, strace, gcc and the
# Python headers for the compiled fast path, nftables, iproute2, setcap, bubblewrap for the
# sandbox of check and grade) with apt-get when
# they are missing, and the Python package into .venv (building sockcap._speedups). For the
# tests also what only they need: chromium with chromium-driver (the report's browser tests)
# and Java (the Spark test of the exported tables), and the test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root=()
if [ "$(id -u)" -ne 0 ]; then as_root=(sudo DEBIAN_FRONTEND=noninteractive); fi
VENV="${SOCKCAP_VENV:-.venv}"

need_apt=()
command -v tshark >/dev/null || need_apt+=(tshark)
command -v tcpdump >/dev/null || need_apt+=(tcpdump)
command -v socat >/dev/null || need_apt+=(socat)
command -v strace >/dev/null || need_apt+=(strace)
command -v gcc >/dev/null || need_apt+=(gcc libc6-dev)
command -v nft >/dev/null || need_apt+=(nftables)
command -v ip >/dev/null || need_apt+=(iproute2)
command -v setpriv >/dev/null || need_apt+=(util-linux)
command -v dumpcap >/dev/null || need_apt+=(wireshark-common)
# the sandbox that check and grade run students' programs in
command -v bwrap >/dev/null || need_apt+=(bubblewrap)
[ -x /usr/sbin/setcap ] || command -v setcap >/dev/null || need_apt+=(libcap2-bin)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# the headers the compiled fast path (sockcap/_speedups.c) is built against
python3 -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null || need_apt+=(python3-dev)
extras="dissect"
if [ "${1:-}" = test ]; then
  extras="test,dissect,export,spark,compressed"
  # the report's browser tests: Debian's chromium and its driver (selenium drives it)
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
  command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
  # Java for the Spark test of the exported tables (pyspark in local mode)
  command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq
  # wireshark-common asks whether non-root users may capture; answer "no" (the default).
  "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# pip's own output (setuptools' notes on editable installs among it) only when it fails
pip_log="$(mktemp)"
if ! "$VENV/bin/python" -m pip install -q -e ".[$extras]" >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  rm -f "$pip_log"
  echo "setup: installing sockcap failed (pip's output above)" >&2
  exit 1
fi
rm -f "$pip_log"
# An editable install writes no bytecode, and where PYTHONDONTWRITEBYTECODE is set Python
# would compile every module again on each start (~60 ms of every command): compile once.
"$VENV/bin/python" -m compileall -q sockcap >/dev/null

case "${1:-}" in
  run)
    shift
    if [ "$(id -u)" -eq 0 ]; then exec "$VENV/bin/sockcap" run --capture "$@"; fi
    exec sudo "$VENV/bin/sockcap" run --capture "$@"
    ;;
  test)
    shift
    exec "$VENV/bin/python" -m pytest -q "$@"
    ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [run|test]" >&2; exit 2 ;;
esac
