"""Shared fixtures: how to run the CLI, and the marks for tests that need root or tshark."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# No per-example deadline anywhere: on a loaded 2-core machine one example can take 300 ms
# where it takes 20 ms alone, and a timed assertion is not what these tests state.
settings.register_profile("sockcap", deadline=None)
settings.load_profile("sockcap")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


def can_capture() -> bool:
    from sockcap.capture.afpacket import can_capture as probe

    return probe()


needs_capture = pytest.mark.skipif(not can_capture(), reason="capturing on lo needs root or CAP_NET_RAW")
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus not present at {CORPUS}")


def _compiled_built() -> bool:
    import importlib.util

    return importlib.util.find_spec("sockcap._speedups") is not None


def _skip_if_both_ran() -> None:
    """A test that picks its path itself (:func:`sockcap_path`, :func:`engine_twin`) does
    the same whatever SOCKCAP_PURE says, so .ci/run's second run of the suite (with
    SOCKCAP_PURE=1, after a first run that ran these on both paths) sets
    SOCKCAP_BOTH_PATHS_RAN=1 to skip them: they would repeat the first run's work."""
    if os.environ.get("SOCKCAP_BOTH_PATHS_RAN"):
        pytest.skip("run on both paths by the first run of .ci/run")


def first_run_only(why: str) -> pytest.MarkDecorator:
    """A test that .ci/run's second run (SOCKCAP_BOTH_PATHS_RAN=1) would only repeat: one
    whose subject does not change with SOCKCAP_PURE (it never runs the engine, or picks
    its engines itself), or one that holds the engine's output to an outside oracle
    (tshark, Spark, a fresh set-up) where a differential test of the first run proves
    the pure twin gives the same bytes as the compiled engine on the same inputs. ``why``
    names which, and the test's docstring says it at length. Outside .ci/run (no
    SOCKCAP_BOTH_PATHS_RAN) it runs on whatever path the environment picks."""
    return pytest.mark.skipif(bool(os.environ.get("SOCKCAP_BOTH_PATHS_RAN")),
                              reason=f"run once, by the first run of .ci/run: {why}")


NEVER_ENGINE = ("it never runs the engine (SOCKCAP_PURE changes nothing it runs), which"
                " SOCKCAP_NO_ENGINE holds it to")


def never_engine() -> list[pytest.MarkDecorator]:
    """The marks of a module whose tests never run the engine (neither twin: no show,
    stats, follow or export, in this process or in a sockcap it starts): .ci/run's second
    run skips them (:func:`first_run_only`), and wherever they run, SOCKCAP_NO_ENGINE=1
    (sockcap.speedups) makes any engine asked for an error, so the claim is checked by
    the run that makes it."""
    return [first_run_only(NEVER_ENGINE), pytest.mark.usefixtures("no_engine")]


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """SOCKCAP_NO_ENGINE=1 for the test and every process it starts (:func:`never_engine`)."""
    monkeypatch.setenv("SOCKCAP_NO_ENGINE", "1")


@pytest.fixture(params=["compiled", "pure"])
def sockcap_path(request: pytest.FixtureRequest) -> dict[str, str | None]:
    """The environment for :func:`sockcap` that picks one path: the compiled extension
    (skipped when it is not built, unless SOCKCAP_REQUIRE_EXTENSIONS says it must be)
    or the pure-Python twin (``SOCKCAP_PURE=1``)."""
    _skip_if_both_ran()
    if request.param == "pure":
        return {"SOCKCAP_PURE": "1"}
    if not _compiled_built() and not os.environ.get("SOCKCAP_REQUIRE_EXTENSIONS"):
        pytest.skip("the compiled extension is not built")
    return {"SOCKCAP_PURE": None, "SOCKCAP_NO_EXTENSIONS": None}


def sockcap(*args: str, timeout: float = 60, user: str | None = None,
            cwd: Path | None = None, input: str | None = None,
            env: dict[str, str | None] | None = None,
            prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (optionally as another user via setpriv).

    ``env`` adds variables to the environment; a value of None removes one; ``prefix``
    is a command the whole is run under (e.g. tests/nouserns.py)."""
    cmd = [sys.executable, "-m", "sockcap", *args]
    if user is not None:
        import pwd

        entry = pwd.getpwnam(user)
        cmd = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups",
               "--inh-caps=-all", *cmd]
        if cwd is not None:  # the user must be able to enter the folder (tmp_path is 0700)
            for folder in (cwd, *cwd.parents):
                if folder == Path("/tmp") or folder == Path("/"):
                    break
                os.chmod(folder, os.stat(folder).st_mode | 0o711)
            os.chmod(cwd, 0o777)
    cmd = [*prefix, *cmd]
    # TZ=UTC: the tcpdump style prints local time, and the golden files were made in UTC
    full_env = dict(os.environ, NO_COLOR="1", PYTHONDONTWRITEBYTECODE="1", TZ="UTC")
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env=full_env, input=input)


def tshark_fields(path: Path, *fields: str, extra: tuple[str, ...] = ()) -> list[list[str]]:
    """tshark's view of a file: one list of field values per packet."""
    cmd = ["tshark", "-r", str(path), "-T", "fields", "-E", "separator=\t",
           "-o", "tcp.relative_sequence_numbers:TRUE", *extra]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture(params=["compiled", "pure"])
def engine_twin(request: pytest.FixtureRequest) -> Any:
    """Each engine class in turn: ``sockcap._speedups.Engine`` and its pure twin
    ``sockcap.pipeline.engine.PureEngine`` (the same tests over both, as multidict's
    ``params=["multidict._multidict", "multidict._multidict_py"]``). The compiled one is
    skipped where the extension is not built or SOCKCAP_PURE turns it off."""
    from sockcap.pipeline.engine import PureEngine
    from sockcap.speedups import compiled_class

    _skip_if_both_ran()
    if request.param == "pure":
        return PureEngine
    compiled = compiled_class()
    if compiled is None:
        pytest.skip("the compiled extension is not built (or SOCKCAP_PURE is set)")
    return compiled


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 now (TCP, or ``kind``), for a server a test starts."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The C echo programs of ``tests/c`` (the course's pair and their planted bugs),
    compiled once per test module (:func:`tests.programs.build_programs`)."""
    from tests.programs import HAVE_GCC, build_programs

    if not HAVE_GCC:
        pytest.skip("gcc is not installed")
    return build_programs(tmp_path_factory.mktemp("c"))
