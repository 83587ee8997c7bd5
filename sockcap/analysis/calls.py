"""The record of one socket call a program made (``run --scenario``): who, when, what,
and what it returned. Written by the endpoints (edge), read by the views (pure)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Call:
    """One socket call: who made it, when (ns), what, and what it returned."""

    ts_ns: int  # monotonic in the log; the capture's wall clock once handed to a view
    side: str  # "client" or "server"
    call: str  # "send(b'hello')", "connect()", "recv()"
    nbytes: int = -1  # the byte count it returned (-1: none)
    error: str = ""  # the errno it failed with ("ECONNREFUSED"; "": it succeeded)
