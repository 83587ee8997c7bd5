#!/usr/bin/env bash
# Rewrite the message template from the code and compile every translation.
#   bash scripts/catalogue.sh
# Run it when messages change on purpose; tests/test_catalogue.py checks both are current.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m babel.messages.frontend -q extract --no-location --sort-output --omit-header \
  -o sockcap/locale/sockcap.pot sockcap >/dev/null
for po in sockcap/locale/*/LC_MESSAGES/sockcap.po; do
  [ -e "$po" ] || continue
  "$PY" -m babel.messages.frontend -q update --no-fuzzy-matching --omit-header \
    -i sockcap/locale/sockcap.pot -o "$po" >/dev/null
  "$PY" -m babel.messages.frontend -q compile -i "$po" -o "${po%.po}.mo" >/dev/null
done
