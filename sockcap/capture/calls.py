"""Any program's socket calls, recorded by strace (the edge; the parsing is
:func:`sockcap.decode.strace.parse_strace`).

The API is three steps that any runner of a program can take, whatever else it does
around the program (a capture, a sandbox, a time limit):

1. ``argv = traced_argv(argv, trace_path)`` wraps a command so that it runs under strace,
   which writes the calls of the program and of every child it starts to ``trace_path``;
   nothing else about the program changes (same stdin/stdout, same exit status, signals
   sent to strace's PID reach it too — strace passes them on).
2. run ``argv`` as the program would have been run;
3. ``calls = read_calls(trace_path, side="client")`` gives the socket calls as
   :class:`~sockcap.analysis.calls.Call` records, on the wall clock, ready to be tied to
   a capture by :func:`sockcap.analysis.calltie.tie_calls`.

ptrace of one's own child needs no root. :func:`strace_path` is None without strace: the
caller says so in one line and goes on without calls.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat

from sockcap.analysis.calls import Call
from sockcap.decode.strace import KINDS, parse_strace

STRING_BYTES = 1024  # bytes of each read/write strace writes (-s): enough to check payloads


def strace_path() -> str | None:
    """The strace program, or None when it is not installed."""
    return shutil.which("strace")


def traced_argv(argv: list[str] | tuple[str, ...], trace_path: str,
                strace: str | None = None, bound: int = 0) -> list[str]:
    """``argv`` run under strace, its socket calls written to ``trace_path``.

    ``-f``: children and threads too; ``-ttt -T``: when each call began (wall clock, µs)
    and how long it took; ``-yy``: each descriptor with its addresses; ``-xx``: every byte
    of a string exact; ``--seccomp-bpf``: the program stops only for the calls traced, so
    it runs at nearly its own speed; ``-qq``/``-e signal=none``: no lines about signals
    and exits.

    ``bound`` (bytes, 0: none): the trace file stops growing there while the program goes
    on. strace writes through a pipe (``-o '|...'``) to ``head -c bound``, and ``wc -c``
    then drains the rest, writing only how many bytes it was into ``trace_path.rest``:
    a server spinning on ``read()`` after EOF writes megabytes of lines a second, and a
    trace written straight to a file would meet the sandbox's file-size limit, where
    SIGXFSZ kills strace and, with it, the program whose behaviour is being judged.
    (No ``/dev/null``: a sandbox's may not be writable.)
    """
    output = trace_path
    if bound > 0:
        output = (f"|head -c {int(bound)} > {shlex.quote(trace_path)}; "
                  f"exec wc -c > {shlex.quote(trace_path + '.rest')}")
    return [strace or strace_path() or "strace", "-f", "-qq", "-I", "2",
            "-e", "signal=none", "-ttt", "-T", "-yy", "-xx", "-s", str(STRING_BYTES),
            "-e", "trace=" + ",".join(sorted(KINDS)), "-o", output, "--",
            *_dies_with_strace(), *argv]


def _dies_with_strace() -> list[str]:
    """The program killed when strace ends: strace leaves the program it started running
    when strace itself is stopped or killed, so the program is started through
    ``setpriv --pdeathsig KILL`` (util-linux), which asks the kernel to kill it when its
    parent, strace, is gone. Stopping strace by its PID then stops the program too."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def trace_folder() -> str:
    """A private folder for the trace file, writable by the program's user (under sudo the
    program runs as the user who ran sudo, and strace with it)."""
    import tempfile

    from sockcap.owner import sudo_user

    folder = tempfile.mkdtemp(prefix="sockcap-calls-")
    user = sudo_user()
    if user is not None:
        os.chown(folder, user.uid, user.gid)
    return folder


READ_LIMIT = 64 << 20  # bytes of a trace read at most


def read_calls(trace_path: str, side: str = "", limit: int = READ_LIMIT) -> list[Call]:
    """The calls in a trace written by :func:`traced_argv` (none if it is missing).

    Read defensively, because the traced program could write the file too (it runs as the
    same user as strace): a symbolic link is not followed, anything but a regular file (a
    FIFO that would block the reader, a device) gives no calls, and at most ``limit``
    bytes are read. Forged lines in it can only mislead the findings about that same
    program; every line is parsed as untrusted text (:func:`parse_strace` skips what is
    not a call)."""
    try:
        fd = os.open(trace_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        data = f.read(limit)
    lines = data.decode("utf-8", "replace").splitlines()
    if len(data) >= limit and lines:
        lines.pop()  # cut at the limit: the last line is a part of one
    return parse_strace(lines, side)


def remove_trace(trace_path: str) -> None:
    """Remove the trace file once read (it holds the program's bytes), and its folder."""
    try:
        os.unlink(trace_path)
    except FileNotFoundError:
        pass
    try:
        os.rmdir(os.path.dirname(trace_path))
    except OSError:
        pass
