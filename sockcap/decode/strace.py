"""strace's output as socket calls (pure: lines in, :class:`Call` records out).

The lines are those of ``strace -f -ttt -T -yy -xx`` (:func:`sockcap.capture.calls.
traced_argv` asks for exactly that): a PID, the wall-clock time the call began, the call
with its arguments, ``= result`` (``-1 ECONNREFUSED (...)`` on failure) and ``<seconds>``
it lasted. A call that blocks while another thread or process runs comes in two lines,
``recvfrom(5<TCP:[...]>,  <unfinished ...>`` and ``<... recvfrom resumed>"...", ...) = 4``;
the two are joined, so a call knows both when it began and when it returned.

``-yy`` writes each descriptor with what it is: ``5<TCP:[127.0.0.1:5001->127.0.0.1:40000]>``
for a connected socket, ``3<TCP:[127.0.0.1:5001]>`` for a listening one, ``4<TCP:[12722]>``
for one not bound yet (its inode). That is what ties a ``read()`` to its connection, and
what tells a socket's ``read()`` from a file's, which is left out. ``-xx`` writes every
byte of a string as ``\\xNN`` (paths in the descriptors too), so the bytes are exact.

Any line that is not a call (``+++ exited with 0 +++``, ``--- SIGCHLD ...``, a line cut
short by a killed strace) is skipped: a trace read while the program runs loses nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sockcap.analysis.calls import Arg, Call, CallKind

KINDS: dict[str, CallKind] = {
    "socket": CallKind.OPEN, "bind": CallKind.BIND, "listen": CallKind.LISTEN,
    "accept": CallKind.ACCEPT, "accept4": CallKind.ACCEPT, "connect": CallKind.CONNECT,
    "write": CallKind.SEND, "send": CallKind.SEND, "sendto": CallKind.SEND,
    "sendmsg": CallKind.SEND, "writev": CallKind.SEND, "sendmmsg": CallKind.SEND,
    "read": CallKind.RECV, "recv": CallKind.RECV, "recvfrom": CallKind.RECV,
    "recvmsg": CallKind.RECV, "readv": CallKind.RECV, "recvmmsg": CallKind.RECV,
    "shutdown": CallKind.SHUTDOWN, "close": CallKind.CLOSE,
    "poll": CallKind.WAIT, "ppoll": CallKind.WAIT, "select": CallKind.WAIT,
    "pselect6": CallKind.WAIT, "epoll_wait": CallKind.WAIT, "epoll_pwait": CallKind.WAIT,
    "epoll_pwait2": CallKind.WAIT, "setsockopt": CallKind.OPTION,
    "getsockopt": CallKind.OPTION,
}
"""The system calls kept, and what each does (the list strace is asked to trace)."""

ON_ANY_FD = frozenset(("read", "write", "readv", "writev", "close"))
"""Calls kept only when their descriptor is a socket (a file's read() is not)."""

SOCKET_KINDS = ("TCP", "UDP", "TCPv6", "UDPv6")

_LINE = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\d+\.\d+)\s+(.*)$")
_CALL = re.compile(r"^([a-z_0-9]+)\((.*)$")
_RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>(.*)$")
_RESULT = re.compile(r"\)\s+=\s+(-?\d+|\?)(<[^\s]*>)?(?:\s+([A-Z][A-Z0-9_]+))?[^<]*?"
                     r"(?:<(\d+\.\d+)>)?\s*$")
_FD = re.compile(r"^(-?\d+)<(.*)>$", re.S)
_PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
_ADDR4 = re.compile(r"sin_addr=inet_addr\(\"([^\"]*)\"\)")
_ADDR6 = re.compile(r"inet_pton\(AF_INET6,\s*\"([^\"]*)\"")
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)", re.S)
_SIMPLE = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"v": b"\v", b"f": b"\f", b"\\": b"\\",
           b"\"": b"\"", b"'": b"'", b"a": b"\a", b"b": b"\b", b"e": b"\x1b"}


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A descriptor as ``-yy`` wrote it."""

    fd: int
    proto: str = ""  # "TCP", "UDP", "TCPv6", "UDPv6"; "" when it is not an IP socket
    local: str = ""
    remote: str = ""

    @property
    def is_socket(self) -> bool:
        return self.proto in SOCKET_KINDS


_INTEGER = re.compile(r"-?[0-9]+")  # str.isdigit() also takes "²", which int() refuses
_ALL_HEX = re.compile(r"(?:\\x[0-9a-fA-F]{2})*")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def unescape(text: str) -> bytes:
    """A C string as strace writes it (``\\x68\\x69``, ``\\n``, ``\\0``) as bytes."""
    if _ALL_HEX.fullmatch(text):  # -xx writes every byte so: read at C speed
        return bytes.fromhex(text.replace("\\x", ""))

    def one(m: re.Match[bytes]) -> bytes:
        code = m.group(1)
        if code[:1] == b"x" and len(code) == 3:
            return bytes((int(code[1:], 16),))
        if code[:1] in b"01234567" and code[:1]:  # (a forged "\\x6" or "\\9" stays as written)
            return bytes((int(code, 8) & 0xFF,))
        return _SIMPLE.get(code, code)

    return _ESCAPE.sub(one, text.encode("latin-1", "replace"))


def split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments, keeping strings, ``{...}``, ``[...]`` and the
    ``<...>`` of a descriptor whole (``->`` inside one does not close it)."""
    args, depth, start, i, quote = [], 0, 0, 0, False
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == '"':
                quote = False
        elif c == '"':
            whole = _QUOTED.match(text, i)  # a string whole (kilobytes of \\xNN): skipped
            if whole is not None:
                i = whole.end()
                continue
            quote = True
        elif c in "([{" or (c == "<" and text[i - 1:i].isdigit()):
            depth += 1
        elif c in ")]}" or (c == ">" and text[i - 1:i] != "-" and depth):
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    last = text[start:].strip()
    if last:
        args.append(last)
    return args


def descriptor(text: str) -> Descriptor | None:
    """``5<TCP:[127.0.0.1:5001->127.0.0.1:40000]>`` as a :class:`Descriptor`."""
    m = _FD.match(text.strip())
    if m is None:
        return _bare(text)
    fd, what = int(m.group(1)), unescape(m.group(2)).decode("utf-8", "replace")
    proto, _sep, rest = what.partition(":[")
    if proto not in SOCKET_KINDS or not rest.endswith("]"):
        return Descriptor(fd)
    ends = rest[:-1].split("->")
    local = ends[0] if ":" in ends[0] else ""  # "12722" alone: an inode, not bound
    return Descriptor(fd, proto, local, ends[1] if len(ends) > 1 else "")


def _bare(text: str) -> Descriptor | None:
    text = text.strip()
    return Descriptor(int(text)) if _INTEGER.fullmatch(text) else None


def sockaddr(text: str) -> str:
    """``{sa_family=AF_INET, sin_port=htons(5001), sin_addr=inet_addr("127.0.0.1")}`` as
    ``127.0.0.1:5001`` (``[::1]:5001`` for IPv6); "" for anything else."""
    port = _PORT.search(text)
    if port is None:
        return ""
    m4 = _ADDR4.search(text)
    if m4 is not None:
        return f"{unescape(m4.group(1)).decode('ascii', 'replace')}:{port.group(1)}"
    m6 = _ADDR6.search(text)
    if m6 is not None:
        return f"[{unescape(m6.group(1)).decode('ascii', 'replace')}]:{port.group(1)}"
    return ""


def string_arg(text: str) -> bytes | None:
    """A ``"..."`` argument's bytes (``"..."...``, cut by ``-s``, gives what was printed);
    a ``[{iov_base="...", ...}, ...]`` vector gives its pieces joined."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', text, re.S)
    if not parts:
        return None
    return b"".join(unescape(p) for p in parts)


@dataclass
class _Pending:
    ts_ns: int
    name: str
    head: str


def parse_strace(lines: Iterable[str], side: str = "") -> list[Call]:
    """The socket calls in ``lines``, in the order they returned. ``side``: the label of
    the traced program ("client", "server"); "" lets each socket's use decide it (one
    that accepted or listens: "server"; one that connected: "client"). A call made
    before its socket had addresses (``socket()``, ``bind()``, ``connect()``) takes them,
    and its side, from the next call on the same descriptor."""
    return settle(list(collapse(_parse(lines, side))))


def collapse(calls: Iterable[Call]) -> Iterator[Call]:
    """Runs of the same call on the same socket with the same result of no bytes (a
    ``read()`` that returns 0 again and again, a ``send()`` failing with EAGAIN) as one
    call with its ``repeat`` count: a server that loops on EOF makes millions of them.
    A run is one process's: two spinning processes interleave their lines, yet each
    run is counted whole."""
    from dataclasses import replace

    runs: dict[int, Call] = {}  # pid -> its run so far
    for call in calls:
        run = runs.get(call.pid)
        if (run is not None and call.nbytes <= 0 and call.fd == run.fd
                and call.syscall == run.syscall and call.result == run.result
                and call.error == run.error):
            runs[call.pid] = replace(run, end_ns=call.returned_ns,
                                     repeat=run.repeat + call.repeat)
            continue
        if run is not None:
            yield run
        runs[call.pid] = call
    yield from sorted(runs.values(), key=lambda c: c.ts_ns)


def settle(calls: list[Call]) -> list[Call]:
    """Fill the addresses and side a call could not know from a later call on the same
    descriptor (before that descriptor is closed and reused)."""
    from dataclasses import replace

    later: dict[int, Call] = {}
    out: list[Call] = []
    for call in reversed(calls):
        known = later.get(call.fd)
        if known is not None and call.fd >= 0 and (not call.local or call.side == "program"):
            call = replace(call, local=call.local or known.local,
                           remote=call.remote or known.remote, proto=call.proto or known.proto,
                           side=known.side if call.side == "program" else call.side)
        if call.kind is CallKind.CLOSE or call.kind is CallKind.OPEN:
            later.pop(call.fd, None)
        if call.fd >= 0 and call.kind is not CallKind.CLOSE and (call.local or call.side != "program"):
            later[call.fd] = call
        out.append(call)
    out.reverse()
    return out


@dataclass
class _Repeats:
    """The lines that repeat a process's last call word for word (but for their times)."""

    text: str  # the call's line without its time and duration
    call: Call
    count: int = 0
    end_ns: int = -1


_DURATION = re.compile(r"\s*<(\d+\.\d+)>\s*$")


def _unrepeated(text: str) -> tuple[str, int]:
    """A call's line without its duration, and the duration in ns (-1: none)."""
    d = _DURATION.search(text)
    return (text[: d.start()], _ns(d.group(1))) if d is not None else (text, -1)


def _parse(lines: Iterable[str], side: str) -> Iterator[Call]:
    """The calls, in the order of the lines. A line that repeats the process's last call
    word for word, with no bytes (the ``read()`` returning 0 a million times), is not
    parsed again: the run is counted, and yielded once it ends as one more call of
    ``repeat`` times, which :func:`collapse` adds to the first."""
    pending: dict[int, _Pending] = {}
    roles: dict[str, str] = {}  # a listening port, or "fd3" -> its role
    repeats: dict[int, _Repeats] = {}
    for raw in lines:
        m = _LINE.match(raw.rstrip("\n"))
        if m is None:
            continue
        pid, ts_ns, rest = int(m.group(1)), _ns(m.group(2)), m.group(3)
        run = repeats.get(pid)
        if run is not None:
            text, spent = _unrepeated(rest)
            if text == run.text:
                run.count += 1
                run.end_ns = ts_ns + spent if spent >= 0 else ts_ns
                continue
            del repeats[pid]
            if run.count:
                yield _more(run)
        if rest.endswith("<unfinished ...>"):
            call = _CALL.match(rest)
            if call is not None:
                pending[pid] = _Pending(ts_ns, call.group(1), call.group(2)[:-16])
            continue
        resumed = _RESUMED.match(rest)
        if resumed is not None:
            began = pending.pop(pid, None)
            if began is None or began.name != resumed.group(1):
                continue
            record = _record(pid, began.ts_ns, ts_ns, began.name, began.head + resumed.group(2))
        else:
            call = _CALL.match(rest)
            if call is None:
                continue
            record = _record(pid, ts_ns, -1, call.group(1), call.group(2))
            if record is not None and record.nbytes <= 0:
                record = _with_side(record, side, roles)
                repeats[pid] = _Repeats(_unrepeated(rest)[0], record)
                yield record
                continue
        if record is not None:
            yield _with_side(record, side, roles)
    for run in repeats.values():
        if run.count:
            yield _more(run)


def _more(run: _Repeats) -> Call:
    from dataclasses import replace

    return replace(run.call, end_ns=run.end_ns, repeat=run.count)


def _ns(seconds: str) -> int:
    whole, _dot, frac = seconds.partition(".")
    return int(whole) * 1_000_000_000 + int((frac + "000000000")[:9])


_SOCKET_FIRST = re.compile(r"\s*-?\d+<(?:TCP|UDP)")


def _record(pid: int, begin: int, resumed_at: int, name: str, body: str) -> Call | None:
    kind = KINDS.get(name)
    if name in ON_ANY_FD and _SOCKET_FIRST.match(body) is None:
        return None  # a file's read() (a loader reading a library: kilobytes of hex)
    result = _RESULT.search(body)
    if kind is None or result is None:
        return None
    args = split_args(body[: result.start()])
    fd = descriptor(args[0]) if args and kind is not CallKind.OPEN else None
    if name in ON_ANY_FD and (fd is None or not fd.is_socket):
        return None
    value = None if result.group(1) == "?" else int(result.group(1))
    error = result.group(3) or "" if value == -1 else ""
    spent = result.group(4)
    end = resumed_at if resumed_at >= 0 else (
        begin + _ns(spent) if spent is not None else -1)
    made = descriptor(f"{value}{result.group(2)}") if result.group(2) else None
    return _call(pid, begin, end, name, kind, args, value, error, fd, made)


def _call(pid: int, begin: int, end: int, name: str, kind: CallKind, args: list[str],
          value: int | None, error: str, fd: Descriptor | None,
          made: Descriptor | None) -> Call | None:
    sock = made if kind in (CallKind.OPEN, CallKind.ACCEPT) and made is not None else fd
    if kind is CallKind.WAIT:
        if not any("TCP" in a or "UDP" in a for a in args):
            if not name.startswith("epoll"):
                return None
        sock = None
    named: list[Arg] = []
    data = b""
    remote = sock.remote if sock is not None else ""
    if kind in (CallKind.CONNECT, CallKind.BIND) and len(args) > 1:
        address = sockaddr(args[1])
        if kind is CallKind.CONNECT:
            remote = address or remote
        named.append(("address", address))
    elif kind is CallKind.LISTEN and len(args) > 1:
        named.append(("backlog", int(args[1]) if _INTEGER.fullmatch(args[1]) else args[1]))
    elif kind is CallKind.SHUTDOWN and len(args) > 1:
        named.append(("how", args[1]))
    elif kind is CallKind.OPTION and len(args) > 2:
        named.append(("option", args[2]))
    elif kind in (CallKind.SEND, CallKind.RECV) and len(args) > 1:
        data = string_arg(args[1]) or b""
        if value is not None and value >= 0:
            data = data[:value]
        if name in ("sendto", "recvfrom") and len(args) > 4 and "sin" in args[4]:
            named.append(("peer", sockaddr(args[4])))
    nbytes = value if kind in (CallKind.SEND, CallKind.RECV) and value is not None and value >= 0 else -1
    return Call(begin, "", text_of(name, kind, named, data), nbytes, error, end, kind, name,
                pid, sock.fd if sock is not None else -1, value, tuple(named),
                sock.local if sock is not None else "", remote,
                (sock.proto.removesuffix("v6") if sock is not None else ""), data)


def text_of(name: str, kind: CallKind, named: list[Arg], data: bytes) -> str:
    """What the timeline writes for a call: ``write(b'hello')``, ``connect(127.0.0.1:5001)``."""
    if kind is CallKind.SEND:
        return f"{name}({short_bytes(data)})"
    if named and kind is not CallKind.RECV:
        return f"{name}({named[0][1]})"
    return f"{name}()"


def short_bytes(data: bytes) -> str:
    """``b'hello'``, the first 16 bytes of a longer one and ``…``."""
    return repr(data[:16]) + ("…" if len(data) > 16 else "")


def _with_side(call: Call, side: str, roles: dict[str, str]) -> Call:
    """The call with its side: the traced program's label, else the role of its socket,
    known by its local port (a listening port and the connections accepted on it are
    the server's; a socket that connected is the client's)."""
    from dataclasses import replace

    if side:
        return replace(call, side=side)
    port = call.local.rpartition(":")[2]
    if call.kind is CallKind.LISTEN and port:
        roles[port] = "server"
    elif call.kind is CallKind.CONNECT and call.fd >= 0:
        roles[f"fd{call.fd}"] = "client"
    role = roles.get(port, "") if port else ""
    if not role and call.remote.rpartition(":")[2] in roles:
        role = "client"
    if call.kind is CallKind.ACCEPT:
        role = "server"
    if not role:
        role = roles.get(f"fd{call.fd}", "program")
    if call.kind is CallKind.CLOSE:
        roles.pop(f"fd{call.fd}", None)
    return replace(call, side=role)
