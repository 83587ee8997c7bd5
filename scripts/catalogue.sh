#!/usr/bin/env bash
# Rewrite the message templates from the code and compile every translation.
#   bash scripts/catalogue.sh
# Run it when messages change on purpose; tests/test_catalogue.py checks both are current.
#   sockcap/locale/sockcap.pot        sockcap's own messages (domain sockcap)
#   sockcap/locale/click.pot          click's messages (Usage:, Options, its errors), taken
#                                     from the installed click (domain click)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
BABEL=("$PY" -m babel.messages.frontend -q)
# N_plural marks singular/plural pairs in tables of words (sockcap/i18n.py)
"${BABEL[@]}" extract --no-location --sort-output --omit-header -k N_plural:1,2 \
  -o sockcap/locale/sockcap.pot sockcap >/dev/null
CLICK_DIR="$("$PY" -c 'import click, os; print(os.path.dirname(click.__file__))')"
"${BABEL[@]}" extract --no-location --sort-output --omit-header \
  -o sockcap/locale/click.pot "$CLICK_DIR" >/dev/null
# click passes one word to gettext through a variable (_(extra["required"]) for an
# option's "[required]"): the extractor cannot see it, so it is added here
"$PY" - <<'EOF'
from babel.messages.pofile import read_po, write_po
path = "sockcap/locale/click.pot"
with open(path, "rb") as f:
    catalog = read_po(f)
for word in ("required",):
    if word not in catalog:
        catalog.add(word)
with open(path, "wb") as f:
    write_po(f, catalog, omit_header=True, sort_output=True, no_location=True)
EOF
for domain in sockcap click; do
  for po in sockcap/locale/*/LC_MESSAGES/"$domain".po; do
    [ -e "$po" ] || continue
    lang="$(basename "$(dirname "$(dirname "$po")")")"
    # the header stays: it carries the language's Plural-Forms
    "${BABEL[@]}" update --no-fuzzy-matching --no-wrap --ignore-obsolete -l "$lang" -D "$domain" \
      -i "sockcap/locale/$domain.pot" -o "$po" >/dev/null
    "${BABEL[@]}" compile -D "$domain" -i "$po" -o "${po%.po}.mo" >/dev/null
  done
done
