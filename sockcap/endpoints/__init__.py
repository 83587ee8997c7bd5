"""The echo endpoints: :mod:`.server` (``sockcap server``) and :mod:`.client` (``sockcap client``).

Both are I/O edges: they open sockets and report through callbacks (``log``, ``out``)
instead of printing. :mod:`.address` holds what they share: address checks, the error
lines for bind failures, and the printable preview of a message. The server is three
modules: :mod:`.echo` (the protocol), :mod:`.workers` (the ``--workers N`` supervisor)
and :mod:`.server` (``run_server``, which wires them). :mod:`.udp_client` is sockcap's one
UDP echo client (the client's, ``check``'s and the lab's). :mod:`.scenarios` holds the
lessons ``--scenario NAME`` runs, and :mod:`.loopback` is ``sockcap run``'s work: server
and client (or a scenario) on loopback, captured, in one event loop.
"""
