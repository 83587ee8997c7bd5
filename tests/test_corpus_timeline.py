"""The whole timeline path (reader -> decoder -> conversations) against tshark on the corpus.

For every capture in ../shared/corpus/{public,adversarial}: no exception but sockcap's own
DecodeError family escapes, and per packet sockcap's source address, source port, TCP flags,
relative sequence number and TCP/UDP payload length agree with the ``.tshark.tsv`` beside
it (tshark 4.0.17). Agreement must be at least 99.5% of all packets.

Intended differences (each one reasoned; they are excluded from the comparison):

- fields that tshark shows twice in one frame (tunnels, ICMP errors quoting a packet):
  tshark lists inner and outer values; sockcap shows the outer transport only. Only the
  first value is compared, and packets where tshark's first transport is an inner one (an
  ICMP error quoting TCP/UDP) are skipped.
- the AccECN ACE field: tshark prints the three bits AE/CWR/ECE as a counter (``-2-``)
  once AccECN is negotiated; those three bits are compared only when tshark shows flags
  here (the timeline's ``[ACK, ACE=5]`` is checked against tshark's Info column below).
- IP fragments: tshark reassembles them and shows the transport header on the last
  fragment; sockcap shows each fragment as captured (marked ``fragment``), without
  reassembly, so transport fields are not compared on fragments.
- Tunnels (IP-in-IP, GRE, PIM register) and ICMP errors: when the outer protocol is not
  TCP/UDP, tshark's only transport fields are the inner packet's; sockcap's line is about
  the outer packet. Their transport fields are not compared.
- A TCP data offset under 5 (``bad tcp header length``): tshark stops analysing the segment
  and reports the whole IP payload as ``tcp.len`` with relative seq 0; sockcap flags the
  header, shows Len=0 and counts the sequence number as usual. Seq and length are not
  compared there.
- A UDP length field that is wrong (``bad udp length``): tshark's ``udp.length`` is the
  field as written; sockcap's Len is what the IP length allows, with the note.
- ``pcapng-unknown-blocks.pcapng``: tshark turns custom blocks into extra frames, so its
  frame numbers do not match packet numbers there; that file is compared by order of the
  frames that have an IP source.
"""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, first_run_only, needs_corpus, needs_tshark

from sockcap.errors import DecodeError
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline import Pipeline
from sockcap.render.packets import PacketView

# Every test here runs the reader, decoder and tracker in this process (sockcap.pipeline's
# Pipeline), never the engine and never the CLI: the same code whatever SOCKCAP_PURE says,
# so .ci/run's second run (pure) skips them rather than repeat the first run's work.
pytestmark = first_run_only("the Python pipeline in this process, never the engine")

ENCAPSULATING = {1, 4, 41, 47, 58, 103}  # ICMP, IPIP, IPv6-in-IP, GRE, ICMPv6, PIM
FLAG_CHARS = {-1: 0x01, -2: 0x02, -3: 0x04, -4: 0x08, -5: 0x10, -6: 0x20, -7: 0x40, -8: 0x80, -9: 0x100}


def captures() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for d in ("public", "adversarial") for p in (CORPUS / d).iterdir()
                  if p.suffix in (".pcap", ".pcapng", ".cap") or p.name.endswith((".pcap", ".pcapng")))


def tshark_flags(text: str) -> tuple[int, int]:
    """(bits, mask): the flags tshark shows and which bits it shows them for."""
    bits = mask = 0
    for pos, bit in FLAG_CHARS.items():
        ch = text[pos]
        if ch in "-0123456789":
            continue
        mask |= bit
        if ch != "·":
            bits |= bit
    return bits, mask


def read_all(path: Path) -> tuple[list, DecodeError | None]:
    view = Pipeline()
    out: list = []
    err = None
    try:
        with open(path, "rb") as f:
            data = f.read()
        for a in view.packets(open_capture(io.BytesIO(data))):
            out.append(a)
    except DecodeError as e:
        err = e
    return out, err


def compare(a, row: list[str]) -> list[str]:
    """Differences between sockcap's annotated packet and tshark's row, as short strings."""
    p = a.packet
    row = row + [""] * (9 - len(row))
    _, ip_src, ip6_src, tsport, usport, flags, seq, tlen, ulen = row[:9]
    diffs = []
    src = (ip_src or ip6_src).split(",")[0]
    if src and p.src != src:
        diffs.append(f"src {p.src}!={src}")
    if "," in tsport or "," in usport or p.fragment:
        return diffs  # tunnels, quoted packets, fragments: only the outer address
    if p.sport < 0 and p.proto in ENCAPSULATING:
        return diffs
    if "bad tcp header length" in p.notes:
        tlen = seq = ""
    if "bad udp length" in p.notes:
        ulen = ""
    if tsport and p.sport != int(tsport):
        diffs.append(f"tcp sport {p.sport}!={tsport}")
    if usport and p.sport != int(usport):
        diffs.append(f"udp sport {p.sport}!={usport}")
    if flags:
        bits, mask = tshark_flags(flags)
        if p.flags & mask != bits:
            diffs.append(f"flags {p.flags:#x}!={bits:#x}")
    if seq and a.seq != int(seq):
        diffs.append(f"seq {a.seq}!={seq}")
    if tlen and p.payload_len != int(tlen):
        diffs.append(f"tcp.len {p.payload_len}!={tlen}")
    if ulen and "," not in ulen and p.payload_len + 8 != int(ulen):
        diffs.append(f"udp.length {p.payload_len + 8}!={ulen}")
    return diffs


@needs_corpus
def test_corpus_agrees_with_tshark() -> None:
    total = agree = 0
    report: list[str] = []
    for path in captures():
        rows = [line.split("\t") for line in
                Path(str(path) + ".tshark.tsv").read_text(encoding="utf-8").splitlines() if line]
        annotated, _ = read_all(path)
        if path.name == "pcapng-unknown-blocks.pcapng":
            rows = [r for r in rows if len(r) > 2 and (r[1] or r[2])]
            pairs = list(zip([a for a in annotated if a.packet.src], rows, strict=False))
        else:
            by_no = {int(r[0]): r for r in rows if r and r[0].isdigit()}
            pairs = [(a, by_no[a.no]) for a in annotated if a.no in by_no]
        for a, row in pairs:
            total += 1
            diffs = compare(a, row)
            if diffs:
                report.append(f"{path.name} #{a.no}: {', '.join(diffs)}")
            else:
                agree += 1
    assert total > 500
    share = agree / total
    print(f"corpus agreement: {agree}/{total} = {share:.4%}")
    for line in report[:60]:
        print(line)
    assert share >= 0.995, "\n".join(report[:60])


@needs_corpus
@pytest.mark.parametrize("path", captures(), ids=lambda p: p.name)
def test_only_decode_errors_escape(path: Path) -> None:
    """Any other exception propagates out of read_all and fails the test."""
    _, err = read_all(path)
    assert err is None or str(err)  # a DecodeError always says what happened


@needs_corpus
@needs_tshark
def test_accecn_flags_read_as_tsharks_info_column() -> None:
    """Once both SYNs negotiate Accurate ECN, AE/CWR/ECE are the ACE counter: the
    timeline writes ``[ACK, ACE=5]`` where Wireshark's Info column does."""
    path = CORPUS / "public" / "accecn_handshake.pcap"
    info = subprocess.run(["tshark", "-r", str(path), "--disable-protocol", "http", "-T",
                           "fields", "-e", "_ws.col.Info"], capture_output=True, text=True,
                          timeout=60, check=True).stdout.splitlines()
    expected = [first(r"(\[[A-Z][^]]*\])", line) for line in info]
    view = Pipeline()
    with path.open("rb") as f:
        mine = [first(r"TCP (\[[^]]*\])", line) for line in view.map(open_capture(f), PacketView(view).text)]
    assert mine == expected
    assert "[PSH, ACK, ACE=5]" in mine and mine[0] == "[SYN, ECE, CWR, AE]"


def first(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, text
    return found.group(1)
