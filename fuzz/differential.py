"""Differential check: the compiled path and the pure path give the same bytes.

For one capture file's bytes and one set of ``sockcap show`` options, run the command
twice in this process, once with the compiled extension (``sockcap._speedups``) and once
with ``SOCKCAP_PURE=1``, and compare stdout, stderr and the exit code with the damage
message (:func:`show_result`). Any difference is a finding.

Usage::

    python fuzz/differential.py --inputs 20000 --seed 1          # mutated corpus inputs
    python fuzz/differential.py --inputs 0 --corpus               # the corpus as it is
    python fuzz/differential.py --time-limit 600 --inputs 10**9   # time-boxed

Inputs are the fuzzer's (:func:`mutators.make_input`, input ``i`` of seed ``S`` rebuilt
from those two numbers alone). ``fuzz/sanitize.sh`` runs this script against a build of
the extension with AddressSanitizer and UndefinedBehaviorSanitizer.

``SOCKCAP_ROWS_IN_MEMORY=2`` in the environment makes the compiled engine write the rows
it keeps to the end (``stats``', ``--explain``'s connections) to its temporary file past
two rows a table (``sockcap/_speedups_spill.h``), on every input: the rows read back from
disk are then what is compared (and, under the sanitizers, checked).
``SOCKCAP_TUPLE_WINDOW=2`` (or another small number) makes ``--explain``'s port-reuse
sentence forget a 4-tuple 2 SYNs after its last one on both paths
(:data:`sockcap.render.confusions.TUPLE_WINDOW`): the compiled twin's ring and the
deletions from its table then run on every input with a few SYNs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load_sanitized() -> None:
    """fuzz/sanitize.sh: use the extension built with ASan/UBSan that it names (or any
    other build of it, ``SOCKCAP_EXTENSION_FILE``)."""
    import importlib.machinery
    import importlib.util

    path = os.environ.get("SOCKCAP_SANITIZED_EXTENSION") or os.environ.get("SOCKCAP_EXTENSION_FILE")
    if not path:
        return
    loader = importlib.machinery.ExtensionFileLoader("sockcap._speedups", path)
    spec = importlib.util.spec_from_file_location("sockcap._speedups", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules["sockcap._speedups"] = module
    import sockcap

    sockcap._speedups = module  # type: ignore[attr-defined]


_load_sanitized()

from mutators import make_input  # noqa: E402
from seeds import CORPUS, load_seeds  # noqa: E402

from sockcap.errors import SockcapError  # noqa: E402

# option sets compared: the views the compiled path renders, with the display filter and
# the packet limit that change where it stops, and the views it hands each packet to
# (--filters: sockcap.pipeline.engine, the hand-over); JSON, tcpdump's notation and
# --explain's sentences are the engine's own on the compiled path and the Python views on
# the pure one
OPTION_SETS: tuple[dict[str, object], ...] = (
    {},
    {"hex_": True},
    {"count": 5},
    {"port": 80, "explain": True},
    {"explain": True},  # the sentences the compiled engine writes (_speedups_explain.h)
    {"explain": True, "hex_": True, "count": 5, "lang": "id"},
    {"json_": True},
    {"json_": True, "hex_": True, "count": 5},  # JSON the engine writes: --hex has no
    {"json_": True, "port": 80},                 # say in it, -c and --port stop and filter
    {"style": "tcpdump", "hex_": True},
    {"style": "tcpdump", "port": 80, "lang": "id"},
    {"filters": True, "count": 5},
    {"color": "always"},  # the compiled engine's colour against rich's (the pure path)
    {"color": "always", "hex_": True, "count": 5},
    {"style": "tcpdump", "color": "always", "hex_": True},  # tcpdump's notation in colour
)

# follow [--stream N [--udp]]: every stream (None), the first streams, a later one, and
# one past most files' end
FOLLOWED = ((None, False), (0, False), (1, False), (3, False), (40, False), (0, True),
            (2, True))


class Result(NamedTuple):
    stdout: str
    stderr: str
    code: int
    error: str  # the damage message ("" when none), or an unexpected exception


def show_result(path: str, options: dict[str, object], *, pure: bool) -> Result:
    """``sockcap show`` on ``path`` in this process, as the CLI would print it."""
    from sockcap import i18n
    from sockcap.commands.show import show_command

    args: dict[str, object] = {"count": 0, "port": 0, "dissect": None, "hex_": False,
                               "json_": False, "style": "wireshark", "no_color": False,
                               "color": "never", "explain": False, **options}
    lang = args.pop("lang", None)  # the reader's language (--lang) for this run, if given
    if lang is None:
        return _run(lambda: show_command(path, **args), pure)  # type: ignore[arg-type]
    before = i18n.language()
    i18n.use_language(str(lang))
    try:
        return _run(lambda: show_command(path, **args), pure)  # type: ignore[arg-type]
    finally:
        i18n.use_language(before)


def stats_result(path: str, json_: bool, *, pure: bool) -> Result:
    """``sockcap stats`` on ``path`` in this process, as the CLI would print it."""
    from sockcap.commands.stats import stats_command

    return _run(lambda: stats_command(path, json_=json_, no_color=True), pure)


def follow_result(path: str, stream: int | None, udp: bool, *, pure: bool) -> Result:
    """``sockcap follow --raw [--stream N [--udp]]`` on ``path`` in this process."""
    from sockcap.commands.follow import follow_command

    return _run(lambda: follow_command(path, stream=stream, udp=udp, mode="raw", out=None,
                                       no_color=True), pure)


def _run(command: Callable[[], None], pure: bool) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code, error = 0, ""
    saved = os.environ.get("SOCKCAP_PURE")
    os.environ["SOCKCAP_PURE"] = "1" if pure else ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            command()
    except SockcapError as e:
        code, error = int(e.exit_code), str(e)
    except Exception as e:
        code, error = -1, f"{type(e).__name__}: {e}"
    finally:
        if saved is None:
            os.environ.pop("SOCKCAP_PURE", None)
        else:
            os.environ["SOCKCAP_PURE"] = saved
    return Result(out.getvalue(), err.getvalue(), code, error)


def differences(data: bytes, folder: str) -> list[str]:
    """The option sets under which the two paths disagree on ``data`` (empty: none)."""
    path = os.path.join(folder, "input.pcap")
    with open(path, "wb") as f:
        f.write(data)
    found = []
    for options in OPTION_SETS:
        compiled = show_result(path, options, pure=False)
        pure = show_result(path, options, pure=True)
        if compiled != pure:
            found.append(describe(options, pure, compiled))
    for json_ in (False, True):
        compiled = stats_result(path, json_, pure=False)
        pure = stats_result(path, json_, pure=True)
        if compiled != pure:
            found.append(describe({"stats": True, "json": json_}, pure, compiled))
    for stream, udp in FOLLOWED:
        compiled = follow_result(path, stream, udp, pure=False)
        pure = follow_result(path, stream, udp, pure=True)
        if compiled != pure:
            found.append(describe({"follow": stream, "udp": udp}, pure, compiled))
    return found


def compiled_only(data: bytes) -> int:
    """Run only the compiled path over ``data`` under every option set (the sanitizer
    run: what is checked is that nothing reads or writes out of bounds); the bytes of
    text made."""
    from sockcap import i18n
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import EngineRun, stats_run
    from sockcap.render.explain import EngineExplanations
    from sockcap.speedups import compiled_class, rows_in_memory

    made = 0
    for options in OPTION_SETS:
        out: list[bytes] = []
        i18n.use_language(str(options.get("lang", "en")))  # the notes' words in it
        try:
            reader = open_capture(io.BytesIO(data))
            pipeline = Pipeline(keep=False, port=int(options.get("port", 0)),  # type: ignore[call-overload]
                                limit=int(options.get("count", 0)))  # type: ignore[call-overload]
            handed = handed_view(pipeline, options)
            shown = EngineRun(compiled_class(), pipeline, hex_=bool(options.get("hex_")),
                              rows_in_memory=rows_in_memory(), **handed)
            try:
                shown.run(reader, out.append)
            finally:  # the connections' list, its rows read back (after damage too)
                if "explain" in handed:
                    made += sum(1 for _line in EngineExplanations(shown.engine).summary())
        except SockcapError:
            pass
        except ValueError as e:  # the pure path's own note_text bug: same on both paths
            if "is not a valid Note" not in str(e):
                raise
        finally:
            i18n.use_language("en")
        made += sum(map(len, out))
    # the stats loop (keep=1): rows made as conversations are forgotten, and at the end
    # (as `sockcap stats` reads them after damage that stops the reader too)
    run = stats_run(compiled_class(), Pipeline(), rows_in_memory())
    try:
        run.run(open_capture(io.BytesIO(data)), out.append)
    except SockcapError:
        pass
    except ValueError as e:
        if "is not a valid Note" not in str(e):
            raise
    made += sum(len(row) for row in run.conversation_rows())
    return made + follow_all(data)


def follow_all(data: bytes) -> int:
    """``follow --raw`` of every stream on the compiled path alone: the lines made."""
    from sockcap.pcapfile.reader import open_capture
    from sockcap.pipeline import Pipeline
    from sockcap.pipeline.engine import EngineRun
    from sockcap.render.follow import FollowView
    from sockcap.speedups import compiled_class

    view, lines = FollowView(None, "raw"), [0]

    def feed(a: Any) -> None:
        lines[0] += sum(1 for _pair in view.feed(a))

    pipeline = Pipeline(analyze=False)
    try:
        EngineRun(compiled_class(), pipeline, hex_=False, view=feed, clock=pipeline).run(
            open_capture(io.BytesIO(data)), lambda chunk: None)
    except SockcapError:
        pass
    return lines[0] + sum(1 for _pair in view.finish())


def handed_view(pipeline: Any, options: dict[str, object]) -> dict[str, Any]:
    """The ``view`` and ``clock`` the show command hands the engine for ``options`` (none
    for the text the engine writes itself; the ``style`` for JSON, which it writes too)."""
    from sockcap.pipeline.contract import Style
    from sockcap.render.explain import PacketExplainer
    from sockcap.render.packets import PacketView
    from sockcap.speedups import tuple_window

    if options.get("color") == "always":
        from sockcap.commands.show import _color_table

        return {"color": _color_table(), "clock": pipeline,
                "style": Style.TCPDUMP if options.get("style") == "tcpdump" else Style.WIRESHARK}
    if not ({"json_", "style", "filters", "explain"} & set(options)):
        return {}
    if options.get("explain") and not (options.get("filters") or options.get("json_")):
        from sockcap.render.explain_words import explain_words

        # the engine's own sentences (show's choice), the port-reuse window show gives it
        return {"explain": {**explain_words(), "tuple_window": tuple_window()}}
    if not (options.get("filters") or options.get("explain")):
        # the engine's own JSON and tcpdump notation (show's choice)
        return {"style": Style.JSON if options.get("json_") else Style.TCPDUMP}
    view = PacketView(pipeline, json=bool(options.get("json_")),
                      style=str(options.get("style", "wireshark")),
                      hex_=bool(options.get("hex_")), filters=bool(options.get("filters")),
                      explainer=(PacketExplainer(tuple_window=tuple_window())
                                 if options.get("explain") else None))
    return {"view": view.text, "clock": pipeline}


def describe(options: dict[str, object], pure: Result, compiled: Result) -> str:
    for field in Result._fields:
        a, b = getattr(pure, field), getattr(compiled, field)
        if a != b:
            if isinstance(a, str):
                la, lb = a.splitlines(), b.splitlines()
                at = next((i for i, (x, y) in enumerate(zip(la, lb, strict=False)) if x != y),
                          min(len(la), len(lb)))
                a = la[at] if at < len(la) else "<end>"
                b = lb[at] if at < len(lb) else "<end>"
                return f"{options}: {field} line {at + 1}: pure {a!r} compiled {b!r}"
            return f"{options}: {field}: pure {a!r} compiled {b!r}"
    return f"{options}: ?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=0, help="seconds (0: none)")
    parser.add_argument("--corpus", action="store_true", help="also the corpus files as they are")
    parser.add_argument("--save", type=Path, default=None, help="folder for the inputs that differ")
    parser.add_argument("--compiled-only", action="store_true",
                        help="run the compiled path alone (the sanitizer run): no comparison")
    a = parser.parse_args()
    from sockcap.speedups import compiled_class

    if compiled_class() is None:
        sys.exit("differential: the compiled extension is not available")
    seeds = load_seeds()
    started = time.monotonic()
    done = findings = 0
    with tempfile.TemporaryDirectory() as folder:
        if a.corpus and a.compiled_only:
            for path in sorted(CORPUS.rglob("*.pcap*")):
                compiled_only(path.read_bytes())
        elif a.corpus:
            for path in sorted(CORPUS.rglob("*.pcap*")):
                for line in differences(path.read_bytes(), folder):
                    findings += 1
                    print(f"corpus {path.name}: {line}", flush=True)
        for i in range(a.start, a.start + a.inputs):
            if a.time_limit and time.monotonic() - started > a.time_limit:
                break
            description, data = make_input(seeds, random.Random((a.seed << 32) | i))
            if a.compiled_only:
                compiled_only(data)
                done += 1
                if done % 10000 == 0:
                    print(f"{done} inputs, {time.monotonic() - started:.0f} s", flush=True)
                continue
            found = differences(data, folder)
            done += 1
            for line in found:
                findings += 1
                print(f"input {i} ({description}): {line}", flush=True)
            if found and a.save is not None:
                a.save.mkdir(parents=True, exist_ok=True)
                (a.save / f"diff-{a.seed}-{i}.pcap").write_bytes(data)
    elapsed = time.monotonic() - started
    what = "compiled only, no comparison" if a.compiled_only else f"{findings} differences"
    module = sys.modules.get("sockcap._speedups")
    print(f"differential: {done} inputs x {len(OPTION_SETS)} option sets in {elapsed:.0f} s,"
          f" {what} (extension: {getattr(module, '__file__', '?')})", flush=True)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
