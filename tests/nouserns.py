"""Run a command where user namespaces are forbidden: ``python nouserns.py CMD ARGS...``.

The command runs in a user namespace of its own (every id mapped to itself, so ``setpriv``
to nobody still works) whose ``user.max_user_namespaces`` is 0: no user namespace can be
made below it, as on a machine whose administrator forbids them. The host's own setting
is never changed. Needs root.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000


def main(argv: list[str]) -> int:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(ready_r)
        if libc.unshare(CLONE_NEWUSER) != 0:
            os._exit(90)
        os.write(ready_w, b"x")
        os.read(go_r, 1)  # the parent has written the id maps
        with open("/proc/sys/user/max_user_namespaces", "w") as f:
            f.write("0")
        os.execvp(argv[0], argv)
    os.close(go_r)
    os.close(ready_w)
    os.read(ready_r, 1)
    for name in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("0 0 4294967295\n")
    os.write(go_w, b"x")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
