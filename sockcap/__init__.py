"""sockcap: see what a socket program really puts on the wire.

The package is a pure core with I/O at the edges::

    capture (sockcap.capture) / pcap file (sockcap.pcapfile)  -> RawFrame       I/O edge
    decode (sockcap.decode)                                   -> Packet          pure
    analysis (sockcap.analysis)                               -> Conversation    pure
    render (sockcap.render)                                   -> lines, JSON     pure
    cli / run                                                 -> console, file   I/O edge

Importing the package imports nothing heavy: scapy and pyshark are only imported by the
commands that need them, so ``sockcap --help`` stays fast.
"""

__version__ = "0.1.0"
