"""The program's entry point: picks the language, then loads the CLI.

Help texts are translated when :mod:`sockcap.cli`'s decorators run, at import, so the
language is chosen before that import: from ``--lang X`` anywhere before ``--`` on the
command line, else from the environment (``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``,
``LANG``, as gettext reads them). The ``--lang`` option itself is declared on the
``sockcap`` group, which checks its value and lists it in ``--help``.

click's own messages ("Usage:", "Show this message and exit.", "No such option") come
from ``gettext.gettext``, the module's global domain: for a translated language it is
pointed at the ``click`` catalogue shipped beside sockcap's own.

Three answers skip click's start-up (``import click`` alone costs more than the rest of
them): the plain forms of ``sockcap show`` (:mod:`sockcap.commands.quick`) and the group's
own ``--help`` and ``--version`` (:mod:`sockcap.commands.toplevel`); each is held to
click's result by ``tests/test_startup.py``.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping, Sequence

from sockcap.i18n import LOCALE_DIR, language_from_env, use_language

CLICK_DOMAIN = "click"


def language_asked(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The language the command line (``--lang X``, ``--lang=X``) or else the
    environment asks for."""
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return language_from_env(env)


def translate_click(lang: str) -> None:
    """click's strings in ``lang`` (its calls to ``gettext.gettext`` read the global
    domain, and the language from the environment, where ``--lang`` puts it)."""
    if lang == "en":
        return
    import gettext  # here: an English start imports no gettext (sockcap.i18n says why)

    gettext.bindtextdomain(CLICK_DOMAIN, str(LOCALE_DIR))
    gettext.textdomain(CLICK_DOMAIN)
    os.environ["LANGUAGE"] = lang


def main() -> None:
    # The imports make many objects and no garbage: the cyclic collector's passes over
    # them cost ~3 ms of every start (bench/startup_bench.py). Off while importing, on
    # again before the command runs (commands that make no cycles turn it off themselves).
    # Plain show freezes what the imports made first (gc.freeze: the modules, classes and
    # tables live to the end anyway): the first collection after gc.enable() and the full
    # one at the interpreter's exit would otherwise walk them all, ~6 ms of a one-packet
    # file's 48 ms (bench/RESULTS.md, "Plain show at 5x tcpdump").
    gc.disable()
    args = sys.argv[1:]
    lang = use_language(language_asked(args, os.environ))
    command = args[_group_options(args, lang):]
    if command[:1] == ["show"]:
        # the plain forms of the most used command skip click's start-up
        # (sockcap.commands.quick says why and how it stays in step with cli.py)
        from sockcap.commands import quick

        params = quick.show_params(command[1:])
        if params is not None:
            import sockcap.commands.show  # noqa: F401  (imported with the collector off)
            from sockcap.exits import guarded
            from sockcap.output import prepare_std_streams

            prepare_std_streams()
            gc.freeze()
            gc.enable()
            guarded(lambda: quick.show(params))
            return
    else:
        # `sockcap --help` and `--version` are written without click as well
        from sockcap.commands import toplevel

        request = toplevel.group_request(args)
        if request is not None:
            from sockcap.exits import guarded
            from sockcap.output import prepare_std_streams

            prepare_std_streams()
            guarded(lambda: _answer(request, lang))
            return
    through_click(lang)


def _group_options(args: Sequence[str], lang: str) -> int:
    """How many arguments before the command are the group's ``--lang L`` (0, 1 or 2),
    when L is the language in use (so a valid choice: click would take it as it is)."""
    if args[:1] == ["--lang"] and args[1:2] == [lang]:
        return 2
    if args[:1] == [f"--lang={lang}"]:
        return 1
    return 0


def through_click(lang: str) -> None:
    """The command line (sys.argv) read and run by click, in ``lang``."""
    translate_click(lang)
    from sockcap.cli import main as cli_main

    gc.enable()
    cli_main()


def _answer(request: str, lang: str) -> None:
    """``sockcap --help`` or ``--version`` (what :func:`sockcap.commands.toplevel.group_request`
    found asked), written as click.echo writes it: the text, a newline, flushed."""
    from sockcap.commands import toplevel

    text = (toplevel.version_line() if request == "version" else
            toplevel.help_page(lang, toplevel.help_width(toplevel.terminal_columns())))
    if not text.isascii():  # click's echo chooses the bytes of other characters itself
        through_click(lang)
        return
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
