"""Capture files: a streaming pcap/pcapng reader and a pcap writer (the file I/O edge)."""

from sockcap.pcapfile.reader import CaptureReader, open_capture
from sockcap.pcapfile.writer import PcapWriter, write_pcap, write_pcap_stream

__all__ = ["CaptureReader", "PcapWriter", "open_capture", "write_pcap", "write_pcap_stream"]
