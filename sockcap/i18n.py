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
from collections.abc import Callable, Mapping

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


MO_MAGIC = 0x950412DE  # a compiled catalogue's first word, in the writer's byte order


class SortedCatalogue:
    """A compiled catalogue (``.mo``) searched where a message is looked up, not decoded
    whole: gettext's GNUTranslations decodes all of its ~1,000 entries when it loads (a
    few ms of every Indonesian start, bench/startup_bench.py), and a command looks up a
    few dozen. The format keeps the original strings sorted (GNU gettext's manual, "The
    Format of GNU MO Files"; Babel writes them so, and ``tests/test_catalogue.py`` checks
    the package's catalogues are), so a lookup is a binary search, and what it finds is
    kept. The answers are GNUTranslations' for every message (the same test asks both):
    a plural entry answers ``gettext`` with its form for 1, a message without a
    translation is given back as it is. A catalogue that is not UTF-8
    is left to GNUTranslations (:meth:`of`)."""

    def __init__(self, data: bytes, order: str) -> None:
        import struct

        self._data = data
        self._entry = struct.Struct(order + "II")
        header: tuple[int, int, int] = struct.unpack_from(order + "III", data, 8)
        self._count, self._originals, self._translations = header
        self._found: dict[str | tuple[str, int], str | None] = {}
        self.plural = _plural_rule(self._translated(0) if self._original(0) == b"" else "")

    @classmethod
    def of(cls, data: bytes) -> SortedCatalogue | gettext.GNUTranslations:
        """The catalogue in ``data``: searched in place when it is a UTF-8 catalogue, else
        read by gettext (which also says what is wrong with a damaged one)."""
        import struct

        order = {MO_MAGIC.to_bytes(4, "little"): "<", MO_MAGIC.to_bytes(4, "big"): ">"}
        if data[:4] in order:
            try:
                catalogue = cls(data, order[data[:4]])
                header = catalogue._translated(0) if catalogue._original(0) == b"" else ""
            except (struct.error, IndexError, UnicodeDecodeError):
                header = ""
            if "charset=utf-8" in header.lower().replace(" ", ""):
                return catalogue
        import gettext
        import io

        return gettext.GNUTranslations(io.BytesIO(data))

    def _original(self, i: int) -> bytes:
        length, offset = self._entry.unpack_from(self._data, self._originals + 8 * i)
        return self._data[offset:offset + length]

    def _translated(self, i: int) -> str:
        length, offset = self._entry.unpack_from(self._data, self._translations + 8 * i)
        return self._data[offset:offset + length].decode("utf-8")

    def _search(self, key: bytes) -> int:
        """The index of the entry whose message (its singular, for a plural entry) is
        ``key``, or -1."""
        low, high = 0, self._count
        while low < high:
            mid = (low + high) // 2
            found = self._original(mid).split(b"\0", 1)[0]
            if found < key:
                low = mid + 1
            elif found > key:
                high = mid
            else:
                return mid
        return -1

    def gettext(self, message: str) -> str:
        try:
            text = self._found[message]
        except KeyError:
            i = self._search(message.encode("utf-8"))
            text = None if i < 0 else self._translated(i)
            if text is not None and b"\0" in self._original(i):  # gettext's: the form of 1
                forms, one = text.split("\0"), self.plural(1)
                text = forms[one] if 0 <= one < len(forms) else None
            self._found[message] = text
        return message if text is None else text

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        form = self.plural(n)
        try:
            text = self._found[(singular, form)]
        except KeyError:
            i = self._search(singular.encode("utf-8"))
            text = None
            if i >= 0 and b"\0" in self._original(i):
                forms = self._translated(i).split("\0")
                text = forms[form] if 0 <= form < len(forms) else None
            self._found[(singular, form)] = text
        if text is None:
            return singular if n == 1 else plural
        return text


def _plural_rule(header: str) -> Callable[[int], int]:
    """The catalogue's rule from its Plural-Forms header as gettext reads it (a number,
    as Indonesian's ``plural=0``, without importing gettext), English's without one."""
    for line in header.splitlines():
        name, _sep, value = line.partition(":")
        if name.strip().lower() == "plural-forms":
            rule = value.split(";")[1].split("plural=")[1]
            if rule.strip().isdigit():
                form = int(rule)
                return lambda n: form
            import gettext

            return gettext.c2py(rule)
    return lambda n: int(n != 1)


_ENGLISH = _Written()
_translation: SortedCatalogue | gettext.GNUTranslations | _Written = _ENGLISH
_language = "en"
# each catalogue file read, by its path, change time and size: a process that changes
# language often (the sanitizer's loop, the test suite) reads each once, and the words
# made from a catalogue (engine_words) can be kept by it (catalogue())
_LOADED: dict[tuple[str, int, int], SortedCatalogue | gettext.GNUTranslations] = {}


def catalogue() -> object:
    """The catalogue in use, the same object while the language and its file stay: the
    key of words made from it once (:func:`sockcap.pipeline.contract.engine_words`)."""
    return _translation


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
        st = os.stat(path)
        key = (path, st.st_mtime_ns, st.st_size)
        if key not in _LOADED:
            with open(path, "rb") as f:
                _LOADED[key] = SortedCatalogue.of(f.read())
        _translation = _LOADED[key]
        _language = code
    else:
        _translation = _ENGLISH
        _language = "en"
    return _language
