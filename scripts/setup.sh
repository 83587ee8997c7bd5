#!/usr/bin/env bash
# Set up sockcap on a fresh Debian/Ubuntu machine (or WSL), then run it or its tests.
#
#   bash scripts/setup.sh run      set up, then `sockcap run --capture` (as you: without root
#                                  it captures in a private network namespace of its own)
#   bash scripts/setup.sh test     set up, then the test suite
#   bash scripts/setup.sh          set up only
#   bash scripts/setup.sh missing  print the system packages it would install, and stop
#
# Installs the system tools the project uses (tshark, dumpcap, tcpdump, socat, strace, gcc and the
# Python headers for the compiled fast path, nftables, iproute2, setcap, bubblewrap for the
# sandbox of check and grade) with apt-get when
# they are missing, and the Python package into .venv (building sockcap._speedups) with pytest
# for its sockcap_record fixture. For the
# tests also what only they need: chromium with chromium-driver (the report's browser tests)
# and Java (the Spark test of the exported tables), and the test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# root runs a command itself; anyone else through sudo, when there is one
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo DEBIAN_FRONTEND=noninteractive "$@"
  else echo "setup: $1 needs root and there is no sudo: run this as root" >&2; exit 1
  fi
}
# A tool is there if it is on PATH or where Debian puts system tools: an ordinary user's
# PATH has no /usr/sbin, where nft, ip, tc and setcap live.
have() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
VENV="${SOCKCAP_VENV:-.venv}"

need_apt=()
have tshark || need_apt+=(tshark)
have tcpdump || need_apt+=(tcpdump)
have socat || need_apt+=(socat)
have strace || need_apt+=(strace)
have gcc || need_apt+=(gcc libc6-dev)
have nft || need_apt+=(nftables)
have ip || need_apt+=(iproute2)
have setpriv || need_apt+=(util-linux)
have dumpcap || need_apt+=(wireshark-common)
# the sandbox that check and grade run students' programs in
have bwrap || need_apt+=(bubblewrap)
have setcap || need_apt+=(libcap2-bin)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# the headers the compiled fast path (sockcap/_speedups.c) is built against
python3 -c 'import os, sysconfig; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' 2>/dev/null || need_apt+=(python3-dev)
# pytest too: the sockcap_record fixture is a pytest plugin, and the README shows it in use
extras="dissect,pytest"
if [ "${1:-}" = test ]; then
  extras="test,dissect,export,spark,compressed"
  # the report's browser tests: Debian's chromium and its driver (selenium drives it)
  have chromium || have chromium-browser || need_apt+=(chromium)
  have chromedriver || need_apt+=(chromium-driver)
  # Java for the Spark test of the exported tables (pyspark in local mode)
  have java || need_apt+=(openjdk-17-jre-headless)
fi
if [ "${1:-}" = missing ]; then  # what would be installed, and nothing else
  echo "${need_apt[*]}"
  exit 0
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # wireshark-common asks whether non-root users may capture; answer "no" (the default).
  as_root apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# pip's own output (setuptools' notes on editable installs among it) only when it fails
pip_log="$(mktemp)"
# The editable install as a plain path in a .pth file (setuptools' "compat" mode): its
# default mode puts an import hook in every start of the interpreter that imports pathlib,
# urllib and ipaddress before sockcap runs (~13 ms of each command's start-up, measured
# with bench/startup_bench.py). Where a setuptools no longer offers the mode, the default.
if ! "$VENV/bin/python" -m pip install -q -e ".[$extras]" \
       --config-settings editable_mode=compat >"$pip_log" 2>&1 &&
   ! "$VENV/bin/python" -m pip install -q -e ".[$extras]" >"$pip_log" 2>&1; then
  cat "$pip_log" >&2
  rm -f "$pip_log"
  echo "setup: installing sockcap failed (pip's output above)" >&2
  exit 1
fi
rm -f "$pip_log"
# The compiled engine built again, guided by a profile of its run over the course's traffic
# (GCC's PGO, scripts/pgo.py): ~9 % less CPU a packet. Kept in build/pgo/, so a second
# set-up of the same tree copies it; where it cannot be made, one line says why and the
# plain build stays (it writes the same bytes).
"$VENV/bin/python" scripts/pgo.py || true
# An editable install writes no bytecode, and where PYTHONDONTWRITEBYTECODE is set Python
# would compile every module again on each start (~60 ms of every command): compile once.
"$VENV/bin/python" -m compileall -q sockcap >/dev/null

case "${1:-}" in
  run)
    shift
    exec "$VENV/bin/sockcap" run --capture "$@"
    ;;
  test)
    shift
    exec "$VENV/bin/python" -m pytest -q "$@"
    ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [run|test|missing]" >&2; exit 2 ;;
esac
