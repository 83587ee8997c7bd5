"""Capture files: a streaming pcap/pcapng reader and a pcap writer (the file I/O edge).

The names below are loaded on first use (PEP 562's module ``__getattr__``), so that a
command that only reads (``sockcap show FILE``) does not import the writer and the file
owner's module with it: start-up is most of a small read (tests/test_startup.py).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # the type checker takes it as true
if TYPE_CHECKING:
    from typing import Any

if TYPE_CHECKING:
    from sockcap.pcapfile.reader import CaptureReader, open_capture
    from sockcap.pcapfile.writer import PcapWriter, write_pcap, write_pcap_stream

# name -> the module that defines it
_EXPORTS = {
    "CaptureReader": "sockcap.pcapfile.reader", "open_capture": "sockcap.pcapfile.reader",
    "PcapWriter": "sockcap.pcapfile.writer", "write_pcap": "sockcap.pcapfile.writer",
    "write_pcap_stream": "sockcap.pcapfile.writer",
}

__all__ = ["CaptureReader", "PcapWriter", "open_capture", "write_pcap", "write_pcap_stream"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)  # as a module without the name says it
    return getattr(importlib.import_module(module), name)
