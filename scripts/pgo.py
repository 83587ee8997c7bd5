"""Build the compiled engine again, guided by a profile of its own run (GCC's PGO).

Usage (``scripts/setup.sh`` runs it after ``pip install``)::

    .venv/bin/python scripts/pgo.py [--check]

Why: the engine's loop has no hot spot left to rewrite (``bench/RESULTS.md``, "Where
plain ``show`` stands"): its time is spread over decoding, tracking and writing text,
where what costs is branches and the layout of code. A build that knows which branches
the course's captures take and which code they never run lays the hot paths out
straight: plain ``show`` takes ~9 % less CPU a packet. CPython's own
``--enable-optimizations`` is the same idea.

How, in a temporary directory (nothing in the tree changes until the last step):

1. ``sockcap/_speedups.c`` is compiled as setuptools compiles it (the interpreter's
   ``CC``/``CFLAGS``/``CCSHARED``/``LDSHARED``, the arguments of
   ``scripts/extension.py``) plus ``-fprofile-generate``, into a copy of the package;
2. that copy's ``sockcap`` runs every output the engine writes (the timeline plain, in
   colour, in Indonesian with ``--hex``, ``--json``, ``--style tcpdump``, ``--explain``,
   ``--filters``, ``stats``, ``follow``) over the training captures of
   ``scripts/pgo_traffic.py``, each run with a time limit;
3. the source is compiled again with ``-fprofile-use -fprofile-partial-training`` (what
   the training never ran is optimised as in the plain build, not for size);
4. the new build must write the same bytes as the installed one for the training runs;
   only then does it replace ``sockcap/_speedups*.so`` (an editable install's extension
   is that file), by a rename.

The result is kept in ``build/pgo/`` under a key of the sources, the arguments, the
compiler, the interpreter and this script with its training: a second set-up of the same
tree copies it instead of building (the build takes ~30 s). Where the compiler is not GCC
>= 10, no extension was built, or any step fails, one line says why and the plain ``-O3``
build stays: the profile changes how fast the engine is, never what it writes. With
``--check`` it only says whether the installed extension is this script's build (exit 0)
or not (exit 1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import extension  # noqa: E402
import pgo_traffic  # noqa: E402

EXTENSION = ROOT / "sockcap" / ("_speedups" + sysconfig.get_config_var("EXT_SUFFIX"))
CACHE = ROOT / "build" / "pgo"
INSTALLED = CACHE / "installed.json"  # which build is in place: its digest
PACKETS = 120_000  # the pcap's frames (the pcapng has a sixth): ~1 s of each output
STEP_SECONDS = 300  # each compile and each training run
# every output the engine renders, and what it hands the Python views (--filters);
# export's columns need pyarrow, an extra: trained when it is installed
RUNS = (["show"], ["show", "--color", "always"], ["--lang", "id", "show", "--hex"],
        ["show", "--json"], ["show", "--style", "tcpdump"], ["show", "--explain"],
        ["show", "--filters"], ["stats"], ["follow", "--stream", "3"],
        ["follow", "--hex", "--stream", "1"])
SAME = (["show"], ["show", "--json"], ["show", "--style", "tcpdump"], ["stats"])


class Skip(Exception):
    """Why the profile-guided build is not made (the plain build stays)."""


def compiler() -> tuple[list[str], list[str]]:
    """(compile command, link command) as setuptools builds the extension with this
    interpreter (``CC``, ``CFLAGS``, ``CPPFLAGS``, ``LDSHARED``, ``LDFLAGS`` from the
    environment override or add to the interpreter's, as there)."""
    var = sysconfig.get_config_var
    cc = shlex.split(os.environ.get("CC") or var("CC"))
    ldshared = shlex.split(os.environ.get("LDSHARED") or var("LDSHARED"))
    env_flags = shlex.split(os.environ.get("CFLAGS", "") + " " + os.environ.get("CPPFLAGS", ""))
    compile_ = [*cc, *shlex.split(var("CFLAGS") or ""), *shlex.split(var("CCSHARED") or ""),
                *env_flags, f"-I{sysconfig.get_paths()['include']}", *extension.COMPILE_ARGS]
    link = [*ldshared, *shlex.split(os.environ.get("LDFLAGS", ""))]
    return compile_, link


def gcc_version(cc: str) -> tuple[str, int]:
    """The compiler's ``--version`` line and GCC's major version (0: not GCC)."""
    try:
        out = subprocess.run([cc, "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Skip(f"{cc} does not run ({exc})") from None
    first = out.splitlines()[0] if out else ""
    is_gcc = subprocess.run([cc, "-dM", "-E", "-x", "c", os.devnull], capture_output=True,
                            text=True, timeout=30, check=False).stdout
    if "__clang__" in is_gcc or "__GNUC__" not in is_gcc:
        return first, 0
    major = re.search(r"#define __GNUC__ (\d+)", is_gcc)
    return first, int(major.group(1)) if major else 0


def key(compile_: list[str], link: list[str], version: str) -> str:
    """What the build depends on, hashed: a change to any of it builds again."""
    h = hashlib.sha256()
    for name in (*extension.SOURCES, *extension.DEPENDS, "scripts/pgo.py",
                 "scripts/pgo_traffic.py", "scripts/extension.py"):
        h.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    h.update(json.dumps([compile_, link, version, sys.version]).encode())
    return h.hexdigest()[:20]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(compile_: list[str], link: list[str], obj: Path, out: Path, flags: list[str]) -> None:
    """One compile and link; ``obj`` stays the same path for both builds (GCC names the
    profile after it)."""
    for argv in ([*compile_, *flags, "-c", str(ROOT / extension.SOURCES[0]), "-o", str(obj)],
                 [*link, *flags, str(obj), "-o", str(out)]):
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                              timeout=STEP_SECONDS, check=False)
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise Skip(f"the compiler failed: {last}")


def package_copy(where: Path, so: Path) -> Path:
    """A copy of the package's Python with ``so`` as its extension: the directory to put
    on PYTHONPATH."""
    shutil.copytree(ROOT / "sockcap", where / "sockcap",
                    ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy2(so, where / "sockcap" / EXTENSION.name)
    return where


def sockcap(path: Path | None, argv: list[str], capture: Path) -> bytes:
    """The output of one ``sockcap`` run on the compiled path (the package at ``path``,
    or the installed one), with a time limit."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SOCKCAP_") and k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(TZ="UTC", SOCKCAP_REQUIRE_EXTENSIONS="1", PYTHONDONTWRITEBYTECODE="1")
    if path is not None:
        env["PYTHONPATH"] = str(path)
    # run from the package's own directory: ``-m`` puts the working directory first on
    # the path, ahead of PYTHONPATH
    done = subprocess.run([sys.executable, "-m", "sockcap", *argv, str(capture)], env=env,
                          cwd=path or ROOT, capture_output=True, timeout=STEP_SECONDS,
                          check=False)
    if done.returncode:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])
        raise Skip(f"sockcap {' '.join(argv)} failed: {last[-1]}")
    return done.stdout


def runs() -> list[list[str]]:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return list(RUNS)
    return [*RUNS, ["export", "--out", "{tmp}/export"]]


def train_and_build(tmp: Path, compile_: list[str], link: list[str]) -> Path:
    """Steps 1-4 of the module's docstring; the path of the checked new build."""
    obj, generated, used = tmp / "obj" / "_speedups.o", tmp / "gen.so", tmp / "use.so"
    obj.parent.mkdir()
    build(compile_, link, obj, generated, ["-fprofile-generate", "-fprofile-update=single"])
    training = package_copy(tmp / "training", generated)
    captures = [tmp / "course.pcap", tmp / "course.pcapng"]
    pgo_traffic.write_pcap(captures[0], PACKETS, seed=1)
    pgo_traffic.write_pcapng(captures[1], PACKETS // 6, seed=2)
    for capture in captures:
        for argv in runs():
            sockcap(training, [a.replace("{tmp}", str(tmp)) for a in argv], capture)
            shutil.rmtree(tmp / "export", ignore_errors=True)
    if not obj.with_suffix(".gcda").exists():
        raise Skip("the training wrote no profile")
    build(compile_, link, obj, used, ["-fprofile-use", "-fprofile-partial-training",
                                      "-Wno-missing-profile"])
    checked = package_copy(tmp / "checked", used)
    for argv in SAME:
        for capture in captures:
            if sockcap(checked, argv, capture) != sockcap(None, argv, capture):
                raise Skip(f"the new build's 'sockcap {' '.join(argv)}' differs from the "
                           "plain build's")
    return used


def put(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` by a rename: a copy cut short never stands there."""
    staged = target.with_name(target.name + ".new")
    shutil.copy2(source, staged)
    os.replace(staged, target)


def install(built: Path) -> None:
    """Put ``built`` in place of the installed extension, and say so."""
    put(built, EXTENSION)
    INSTALLED.write_text(json.dumps({"sha256": digest(EXTENSION)}) + "\n")


def is_installed() -> bool:
    """Whether the extension in place is this script's build."""
    try:
        kept: str = json.loads(INSTALLED.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    try:
        return kept == digest(EXTENSION)
    except OSError:
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--check", action="store_true",
                    help="only say whether the installed extension is the profile-guided build")
    if ap.parse_args().check:
        guided = is_installed()
        print("profile-guided" if guided else "not profile-guided")
        return 0 if guided else 1
    try:
        if not EXTENSION.exists():
            raise Skip("no compiled extension was built")
        compile_, link = compiler()
        version, major = gcc_version(compile_[0])
        if major < 10:
            raise Skip(f"needs GCC >= 10 (-fprofile-partial-training); the compiler is {version!r}")
        build_key = key(compile_, link, version)
        CACHE.mkdir(parents=True, exist_ok=True)
        kept = CACHE / f"{build_key}.so"
        if not kept.exists():
            print("setup: building the compiled engine again, guided by a profile of its run "
                  "(once, ~30 s)", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="sockcap-pgo-") as tmp:
                put(train_and_build(Path(tmp), compile_, link), kept)
        install(kept)
    except (Skip, OSError, subprocess.TimeoutExpired) as exc:
        print(f"setup: the profile-guided build of the engine was not made ({exc}); "
              "the plain build stays", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
