"""One ``_()`` for the whole program (Mercurial's ``i18n.py`` is the model).

Every sentence a user reads goes through :func:`_` (or :func:`ngettext`); tables of
words keyed by a code mark their entries with :func:`N_` (or :func:`N_plural`) so that ``pybabel extract``
finds them, and translate them where they are shown. A translated sentence is one
message with named placeholders (``_("ack {ack} = seq {seq} + {length} bytes")``) so that a
translator may reorder it; the code never glues translated pieces together.

The catalogues live under ``sockcap/locale/<lang>/LC_MESSAGES/sockcap.mo`` (domain
``sockcap``). The edge (the CLI) picks the language once at start-up with
:func:`use_language`; until then, and for a language without a catalogue, the messages
are the English ones in the code. Pure layers only look words up: they read no
environment and open no file (the catalogue is loaded by the edge).

JSON keys and values, golden codes and exit codes never depend on the language.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    import gettext

DOMAIN = "sockcap"
# a plain path (os.path, not pathlib): every command imports this module first, and
# pathlib costs a few milliseconds of start-up (urllib.parse, ipaddress, fnmatch)
LOCALE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locale")



class _Written:
    """The messages as written in the code: what gettext's NullTranslations gives, without
    importing gettext (it imports re: a few per cent of an English command's start-up,
    bench/startup_bench.py); gettext is imported when a catalogue is loaded."""

    @staticmethod
    def gettext(message: str) -> str:
        return message

    @staticmethod
    def ngettext(singular: str, plural: str, n: int) -> str:
        return singular if n == 1 else plural


_translation: gettext.NullTranslations | _Written = _Written()
_language = "en"


def _(message: str) -> str:
    """The message in the chosen language (the English text when it has no translation)."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the chosen language."""
    return _translation.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a message for extraction without translating it (tables of words)."""
    return message


def N_plural(singular: str, plural: str) -> tuple[str, str]:
    """Marks a singular/plural pair for extraction without translating it (tables of
    counted words, shown through :func:`ngettext`); ``scripts/catalogue.sh`` extracts it
    with ``-k N_plural:1,2``."""
    return singular, plural


def language() -> str:
    """The language in use: ``en`` or the code of a loaded catalogue (``id``)."""
    return _language


def available_languages() -> tuple[str, ...]:
    """``en`` and every language with a compiled catalogue in the package."""
    try:
        codes = os.listdir(LOCALE_DIR)
    except OSError:
        codes = []
    found = sorted(code for code in codes if os.path.isfile(_catalogue(code)))
    return ("en", *found)


def _catalogue(code: str) -> str:
    return os.path.join(LOCALE_DIR, code, "LC_MESSAGES", f"{DOMAIN}.mo")


def language_from_env(env: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for, as gettext reads it: the first of
    ``LANGUAGE`` (a colon-separated list), ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` that is
    set; ``id_ID.UTF-8`` -> ``id``; ``C``/``POSIX`` -> ``en``."""
    env = os.environ if env is None else env
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var, "")
        if value:
            first = value.split(":")[0]
            code = first.split(".")[0].split("@")[0].split("_")[0].lower()
            return "en" if code in ("c", "posix", "") else code
    return "en"


def use_language(lang: str) -> str:
    """Use ``lang``'s catalogue from now on; returns the language actually in use
    (``en`` when the package has no catalogue for it)."""
    global _translation, _language
    code = lang.split(".")[0].split("_")[0].lower()
    path = _catalogue(code)
    if code != "en" and os.path.isfile(path):
        import gettext

        with open(path, "rb") as f:
            _translation = gettext.GNUTranslations(f)
        _language = code
    else:
        _translation = _Written()
        _language = "en"
    return _language
