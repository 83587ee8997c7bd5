"""sockcap: see what a socket program really puts on the wire.

The package is a pure core with I/O at the edges::

    capture (sockcap.capture) / pcap file (sockcap.pcapfile)  -> RawFrame       I/O edge
    decode (sockcap.decode)                                   -> Packet          pure
    analysis (sockcap.analysis)                               -> Conversation    pure
    pipeline (sockcap.pipeline)                               -> Annotated       pure
    render (sockcap.render)                                   -> lines, JSON     pure
    cli, commands                                             -> console, file   I/O edge

The layering rule (``tests/test_layers.py`` checks it from the imports):

- the pure packages, ``decode``, ``analysis``, ``pipeline`` and ``render``, never import an
  edge package or module (``capture``, ``endpoints``, ``pcapfile``, ``commands``, ``cli``,
  ``lab``, ``check``, ``export``), not even inside a function;
- no module imports another that imports it back, directly or round a longer loop;
- the modules beside the layers (``codes``, ``i18n``, ``errors``) import no layer: the
  codes and their words, the one ``_()`` and the error tree are shared by all of them.

``sockcap.pipeline`` is the one place where frames become annotated packets; every view
(timeline, JSON, hex, follow, stats, ladder, report, tables) is a consumer of it, and a
command only opens the input, picks the consumers and writes what they return.

Importing the package imports nothing heavy: scapy and pyshark are only imported by the
commands that need them, so ``sockcap --help`` stays fast.
"""

__version__ = "0.1.0"
