"""``sockcap show FILE`` without loading click: the plain forms of the most used command.

Why: start-up is most of the cost of reading a small file, and importing click (with the
standard modules it pulls in: inspect, ast, typing, uuid, datetime, threading) costs more
CPU than all of sockcap's reading modules together; tcpdump reads a one-packet file in
~4 ms. So :func:`show_params` reads the common forms of ``sockcap show`` itself —
``FILE`` with ``-c N``, ``--port N``, ``--style S``, ``--color C`` and the view flags, in
any order — and
gives exactly the parameters click would give (``tests/test_startup.py`` parses the same
command lines both ways and requires equal results, so this table cannot drift from
``cli.py``'s declarations unseen). Anything else — help, an error to report, a form not
listed here (``--port=80``, ``-c5``, ``--``, options before ``show``), an option added
later — returns None and goes through click unchanged, with its messages.

Edge code: it reads the command line, and asks whether FILE is a folder (as click's Path
type does, to refuse it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any

MAX_COUNT = 10**12  # sockcap.commands.options.MAX_COUNT (the test checks they agree)

# show's parameters as click gives them when not on the command line
SHOW_DEFAULTS: dict[str, Any] = {
    "count": None, "port": None, "dissect": None, "hex_": False, "json_": False,
    "style": "wireshark", "no_color": False, "explain": False, "filters": False,
    "color": "auto",
}
SHOW_FLAGS = {"--hex": "hex_", "--json": "json_", "--no-color": "no_color",
              "--explain": "explain", "--filters": "filters"}
# option -> (parameter, lowest, highest) for integers; choices for --style
SHOW_NUMBERS = {"-c": ("count", 1, MAX_COUNT), "--port": ("port", 1, 65535)}
SHOW_STYLES = ("wireshark", "tcpdump")
# option -> (parameter, choices) for the options that take one word of a list
SHOW_CHOICES = {"--style": ("style", SHOW_STYLES), "--color": ("color", ("auto", "always", "never"))}


def show_params(args: Sequence[str]) -> dict[str, Any] | None:
    """click's parameters of ``sockcap show ARGS``, or None: let click read them."""
    params = dict(SHOW_DEFAULTS)
    file = None
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in SHOW_FLAGS:
            params[SHOW_FLAGS[arg]] = True
        elif arg in SHOW_NUMBERS or arg in SHOW_CHOICES:
            if i >= len(args):
                return None
            value = args[i]
            i += 1
            if arg in SHOW_CHOICES:
                name, choices = SHOW_CHOICES[arg]
                if value not in choices:
                    return None
                params[name] = value
                continue
            name, low, high = SHOW_NUMBERS[arg]
            if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
                return None
            params[name] = int(value)
        elif arg.startswith("-") and arg != "-":
            return None  # help, another option, a form not read here, an error
        elif file is None:
            file = arg
        else:
            return None  # a second file: click says what is wrong
    if file is None or (file != "-" and os.path.isdir(file)):
        return None
    params["file"] = file
    return params


def show(params: dict[str, Any]) -> None:
    """Run ``sockcap show`` with click's parameters (from click or :func:`show_params`)."""
    from sockcap.commands.show import show_command

    show_command(params["file"], count=params["count"] or 0, port=params["port"] or 0,
                 dissect=params["dissect"], hex_=params["hex_"], json_=params["json_"],
                 style=params["style"], no_color=params["no_color"],
                 explain=params["explain"], filters=params["filters"], color=params["color"])
