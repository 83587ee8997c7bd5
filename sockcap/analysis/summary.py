"""One-line summaries of a capture's conversations (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from sockcap.analysis.conversation import Conversation
from sockcap.capture.base import CaptureStats


def fmt_rtt(ns: int) -> str:
    return f"{ns / 1e6:.3f} ms" if ns >= 0 else "n/a (no handshake)"


def summary_line(convs: Sequence[Conversation], stats: CaptureStats | None = None) -> str:
    """``16 packets: client→server 9 (612 bytes), server→client 7 (478 bytes), handshake RTT 0.060 ms``."""
    up = sum(c.dirs[0].packets for c in convs)
    down = sum(c.dirs[1].packets for c in convs)
    up_b = sum(c.dirs[0].bytes for c in convs)
    down_b = sum(c.dirs[1].bytes for c in convs)
    text = (f"{up + down} packets: client→server {up} ({up_b} bytes), "
            f"server→client {down} ({down_b} bytes)")
    tcp = [c for c in convs if c.syn_ts >= 0]
    if tcp:
        text += f", handshake RTT {fmt_rtt(tcp[0].irtt_ns)}"
    if stats is not None and stats.dropped >= 0:
        text += f", {stats.dropped} dropped by the kernel"
    return text
