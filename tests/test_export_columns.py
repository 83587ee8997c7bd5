"""The export's columns on the engine: both twins hand out the same batches byte for byte
(``Engine.columns()`` / ``batch()`` for the packets, ``conversation_columns()`` /
``conversation_batch()`` for the conversations; sockcap/_speedups_columns.h,
sockcap/_speedups_convcols.h and sockcap/pipeline/columns.py), the same conversations in
the same order with the same Zeek letters, uids and Community IDs, and the tables they
make equal the reference rows of
:class:`~sockcap.export.rows.TableRows` (``show --json``'s record a packet, ``stats
--json`` and ZeekConn a conversation) — over every capture of the public corpus and over
captures made by hypothesis (cut frames, untimed frames, odd link types)."""

from __future__ import annotations

import importlib.util
import io
import struct
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, needs_corpus
from hypothesis import HealthCheck, given, settings
from test_speedups import LINK_HEADS, _ip, _tcp, captures

from sockcap.errors import CaptureFileError, SockcapError
from sockcap.export.job import ExportJob, _run_columns
from sockcap.export.rows import TableRows
from sockcap.pcapfile.reader import open_capture
from sockcap.pipeline.columns import CONVERSATION_COLUMN_KINDS, PACKET_COLUMN_KINDS, encode
from sockcap.render.tables import CONVERSATION_COLUMNS, PACKET_COLUMNS

needs_pyarrow = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None,
                                   reason="pyarrow is not installed (pip install 'sockcap[export]')")
TABLES = ("packets", "conversations")
# every public capture small enough for the pure twin to read quickly
CORPUS_CAPTURES = sorted(p for p in (CORPUS / "public").glob("*") if p.is_file()
                         and p.suffix not in (".tsv", ".log")
                         and p.stat().st_size < 300_000) if CORPUS.is_dir() else []


class Recorder:
    """A sink that keeps what it is given: a table's batches (or rows)."""

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.rows: list[dict[str, Any]] = []

    def add_batch(self, rows: int, columns: Any) -> None:
        self.batches.append((rows, columns))

    def add(self, row: dict[str, Any], size: int = 0) -> None:
        self.rows.append(row)


def column_export(engine_class: Any, data: bytes,
                  capture: str = "cap") -> tuple[dict[str, Recorder], str]:
    """The export's loop (``sockcap.export.job._run_columns``) over ``data`` with small
    batches (7 packet rows or 600 payload bytes, 3 conversation rows: many batches, cut
    mid-buffer), on one twin."""
    from sockcap.export import sinks as sink_module

    sinks = {t: Recorder() for t in TABLES}
    old = (sink_module.GROUP_ROWS["packets"], sink_module.GROUP_BYTES,
           sink_module.GROUP_ROWS["conversations"])
    (sink_module.GROUP_ROWS["packets"], sink_module.GROUP_BYTES,
     sink_module.GROUP_ROWS["conversations"]) = 7, 600, 3
    try:
        try:
            reader = open_capture(io.BytesIO(data))
        except SockcapError as e:
            return sinks, str(e)
        failure = _run_columns(ExportJob("-", capture, "", TABLES, "parquet"), reader,
                               sinks, None, engine_class)  # type: ignore[arg-type]
    finally:
        (sink_module.GROUP_ROWS["packets"], sink_module.GROUP_BYTES,
         sink_module.GROUP_ROWS["conversations"]) = old
    return sinks, str(failure) if failure else ""


def reference(data: bytes, capture: str = "cap"
              ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]], str]:
    """The reference rows (TableRows over the pure pipeline), as job._run takes them."""
    names = [name for name, _kind in PACKET_COLUMNS]
    packets: list[tuple[Any, ...]] = []
    conversations: list[dict[str, Any]] = []
    try:
        reader = open_capture(io.BytesIO(data))
    except SockcapError as e:
        return packets, conversations, str(e)
    rows = TableRows(capture, TABLES)
    failure = ""

    def take(table: str, row: dict[str, Any]) -> None:
        if table == "packets":
            packets.append(tuple(row[n] for n in names))
        else:
            conversations.append(row)

    try:
        for table, row, _size in rows.run(reader):
            take(table, row)
    except CaptureFileError as e:
        failure = str(e)
        for table, row, _size in rows.live():
            take(table, row)
    return packets, conversations, failure


def twins() -> list[Any]:
    from sockcap.pipeline.engine import PureEngine
    from sockcap.speedups import compiled_class

    compiled = compiled_class()
    return [PureEngine] if compiled is None else [compiled, PureEngine]


CONVERSATION_NAMES = [name for name, _kind in CONVERSATION_COLUMNS]


def cut_like(batches: list[Any], rows: list[tuple[Any, ...]], kinds: str) -> list[Any]:
    """The reference rows, cut where the engine cut its batches, encoded."""
    expected, at = [], 0
    for n, _columns in batches:
        expected.append(encode(rows[at : at + n], kinds))
        at += n
    assert at == len(rows)
    return expected


def check(data: bytes) -> None:
    """Both twins: the same batches, packets and conversations; and the reference's rows."""
    results = [column_export(cls, data) for cls in twins()]
    (sinks, damage) = results[0]
    for other, other_damage in results[1:]:
        assert other_damage == damage
        assert other["packets"].batches == sinks["packets"].batches  # byte for byte
        assert other["conversations"].batches == sinks["conversations"].batches
    packets, conversations, ref_damage = reference(data)
    assert damage == ref_damage
    assert not sinks["conversations"].rows  # batches only
    batches, conv_batches = sinks["packets"].batches, sinks["conversations"].batches
    assert all(1 <= n <= 7 for n, _columns in batches)  # bounded, whatever the buffer holds
    assert all(n >= 1 for n, _columns in conv_batches)
    # the reference rows, cut where the engine cut them, encode to the same bytes
    assert batches == cut_like(batches, packets, PACKET_COLUMN_KINDS)
    conv_rows = [tuple(row[n] for n in CONVERSATION_NAMES) for row in conversations]
    assert conv_batches == cut_like(conv_batches, conv_rows, CONVERSATION_COLUMN_KINDS)
    if importlib.util.find_spec("pyarrow") is not None:
        check_arrow(batches, packets)
        check_arrow(conv_batches, conv_rows, "conversations")


def check_arrow(batches: list[Any], packets: list[tuple[Any, ...]],
                table_name: str = "packets") -> None:
    """The batches as Arrow arrays (what the Parquet sink writes) hold the rows' values."""
    import pyarrow as pa

    from sockcap.export.schema import SCHEMAS
    from sockcap.export.sinks import column_array

    schema = SCHEMAS[table_name]
    got = [pa.RecordBatch.from_arrays(
        [column_array(f.type, n, c) for f, c in zip(schema, columns, strict=True)],
        schema=schema) for n, columns in batches]
    for b in got:
        b.validate(full=True)
    table = pa.Table.from_batches(got, schema=schema)
    want = pa.Table.from_pylist([dict(zip(schema.names, [list(v.items()) if isinstance(
        v, dict) and schema.field(i).type.num_fields == 1 else v
        for i, v in enumerate(row)], strict=True)) for row in packets], schema=schema)
    assert table.equals(want)


def test_kinds_follow_the_schema() -> None:
    """The C engine's column kinds are the table's (PACKET_COLUMN_KINDS in both files)."""
    folder = Path(__file__).resolve().parents[1] / "sockcap"
    source = (folder / "_speedups_columns.h").read_text()
    assert f'PACKET_COLUMN_KINDS[] = "{PACKET_COLUMN_KINDS}"' in source
    assert PACKET_COLUMN_KINDS == "qddsisisLqqqqsbqsqqsLs"
    source = (folder / "_speedups_convcols.h").read_text()
    assert f'CONVERSATION_COLUMN_KINDS[] = "{CONVERSATION_COLUMN_KINDS}"' in source
    assert CONVERSATION_COLUMN_KINDS == "sqsssPPPdddMsssisiqqsss"
    from sockcap.export.sinks import DICTIONARY

    # the dictionary-encoded columns are columns of their tables
    assert set(DICTIONARY["packets"]) <= {name for name, _kind in PACKET_COLUMNS}
    assert set(DICTIONARY["conversations"]) <= set(CONVERSATION_NAMES)


def test_conn_states_in_the_engine_order() -> None:
    """The C engine indexes the conn_state words it is handed by its CS_* enum: the
    order of ZeekConn's ConnState."""
    from sockcap.analysis.zeek import ConnState

    source = (Path(__file__).resolve().parents[1] / "sockcap" / "_speedups_convcols.h").read_text()
    enum = source.split("enum { CS_S0", 1)[1].split("CS_COUNT", 1)[0]
    assert ["S0"] + [w.strip()[3:] for w in enum.split(",") if w.strip()] == [
        s.name for s in ConnState]


def test_encode_nulls_and_empty_lists() -> None:
    row = (1, None, None, None, None, None, None, "ARP", [], None, None, None, 42, None, b"",
           None, None, 42, 42, "eth", ["bad thing"], None)
    n, columns = encode([row, row])
    assert n == 2
    assert columns[0] == (None, (1).to_bytes(8, "little") * 2)
    assert columns[1] == (b"\x00", bytes(16))  # time: both null, zeros under them
    assert columns[7] == (None, b"\x00\x00\x00\x00\x03\x00\x00\x00\x06\x00\x00\x00", b"ARPARP")
    assert columns[8] == (bytes(12), b"\x00\x00\x00\x00", b"")  # flags: two empty lists
    assert columns[20][0] == b"\x00\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00"
    assert encode([]) == (0, tuple((None, b"\x00\x00\x00\x00", b"") if k in "sb" else
                                   (b"\x00\x00\x00\x00", b"\x00\x00\x00\x00", b"") if k == "L"
                                   else (None, b"") for k in PACKET_COLUMN_KINDS))


@needs_corpus
@pytest.mark.parametrize("path", CORPUS_CAPTURES, ids=lambda p: p.name)
def test_corpus_columns(path: Path) -> None:
    check(path.read_bytes())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(captures())
def test_made_captures_columns(data: bytes) -> None:
    check(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(captures())
def test_damaged_captures_columns(data: bytes) -> None:
    """Cut anywhere: the rows before the damage, then the conversations still live."""
    for cut in (len(data) - 1, len(data) * 2 // 3, 40):
        if cut > 24:
            check(data[:cut])


@needs_pyarrow
def test_parquet_batches_equal_reference_file(tmp_path: Path) -> None:
    """An export through the sink (pyarrow's buffers, row groups) reads back as the
    reference rows, on whichever twin runs."""
    import pyarrow.parquet as pq

    from sockcap.export.job import export_file

    source = Path(__file__).resolve().parent / "golden"
    path = next(p for p in sorted(source.glob("*.pcap")) if p.stat().st_size > 2000)
    result = export_file(ExportJob(str(path), "cap", str(tmp_path), TABLES, "parquet"))
    packets, conversations, _damage = reference(path.read_bytes())
    table = pq.read_table(tmp_path / "packets" / "capture=cap")
    assert result.rows == {"packets": len(packets), "conversations": len(conversations)}
    names = [n for n, _k in PACKET_COLUMNS]
    assert [tuple(r[n] for n in names) for r in table.to_pylist()] == [
        tuple(list(v) if isinstance(v, tuple | list) else v for v in row) for row in packets]
    table = pq.read_table(tmp_path / "conversations" / "capture=cap")
    assert table.to_pylist() == [{k: list(v.items()) if k == "notes" else v
                                  for k, v in row.items()} for row in conversations]


@pytest.mark.parametrize("capture", ["", "x" * 300, "kümmel \u00e9t\u00e9 日本", "a" * 55,
                                     "a" * 56, "a" * 64])
def test_uid_of_any_capture_name(capture: str) -> None:
    """The uid hashes the partition's name (SHA-1 in C: names across the 55/56/64-byte
    block edges, longer than the C engine's stack buffer, not ASCII): both twins and the
    reference agree."""
    data = (Path(__file__).resolve().parent / "golden" / "scenario-backlog.pcap").read_bytes()
    got = [column_export(cls, data, capture)[0]["conversations"].batches for cls in twins()]
    assert all(g == got[0] for g in got)
    rows = [tuple(r[n] for n in CONVERSATION_NAMES) for r in reference(data, capture)[1]]
    assert got[0] == cut_like(got[0], rows, CONVERSATION_COLUMN_KINDS)


# (flags, from the client) of one TCP conversation a Zeek conn_state (the C engine's
# conv_conn_state against ZeekConn.conn_state), and UDP's
S, SA, A, F, R, RA, PA = 0x002, 0x012, 0x010, 0x011, 0x004, 0x014, 0x018
CONN_STATES = {
    "S0": [(S, True)], "S1": [(S, True), (SA, False), (A, True)],
    "SF": [(S, True), (SA, False), (A, True), (F, True), (F, False)],
    "REJ": [(S, True), (RA, False)], "S2": [(S, True), (SA, False), (A, True), (F, True)],
    "S3": [(S, True), (SA, False), (A, True), (F, False)],
    "RSTO": [(S, True), (SA, False), (A, True), (R, True)],
    "RSTR": [(S, True), (SA, False), (A, True), (R, False)],
    "RSTOS0": [(S, True), (R, True)], "RSTRH": [(SA, False), (R, False)],
    "SH": [(S, True), (F, True)], "SHR": [(SA, False), (F, False)],
    "OTH": [(PA, True), (PA, False)],
    "OTH ": [(S, True), (A, True), (R, True)],  # the RSTOS0 pattern not matched: OTH
}


@pytest.mark.parametrize("v6", [False, True])
def test_every_conn_state_on_both_twins(v6: bool) -> None:
    """One conversation for each of Zeek's conn_state codes (and UDP's SF and S0): both
    twins' batches equal the reference's, which names the code expected."""
    frames: list[bytes] = []
    ts = 1_700_000_000 * 10**9
    head: bytes = LINK_HEADS[1](v6)  # type: ignore[no-untyped-call]
    for port, flags_seq in enumerate(CONN_STATES.values(), start=40000):
        for seq, (flags, client) in enumerate(flags_seq):
            ends = (1, 2, port, 80) if client else (2, 1, 80, port)
            body = _tcp(ends[2], ends[3], 1000 + seq, 5000 if flags & A else 0, flags, 512,
                        b"", b"hi" if flags == PA else b"")
            frames.append(head + _ip(v6, ends[0], ends[1], 6, body))
    for port, both in ((50000, True), (50001, False)):
        for client in (True, False)[: 2 if both else 1]:
            ends = (1, 2, port, 53) if client else (2, 1, 53, port)
            frames.append(head + _ip(v6, ends[0], ends[1], 17,
                                     struct.pack("!HHHH", ends[2], ends[3], 10, 0) + b"hi"))
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + b"".join(
        struct.pack("<IIII", (ts + i * 1000) // 10**9, (ts + i * 1000) // 1000 % 10**6,
                    len(f), len(f)) + f for i, f in enumerate(frames))
    check(data)
    states = sorted(r["conn_state"] for r in reference(data)[1])
    assert states == sorted([k.strip() for k in CONN_STATES] + ["SF", "S0"])


REGRESS = sorted((Path(__file__).resolve().parent / "regress").glob("*.pcap*"))


@pytest.mark.parametrize("path", REGRESS, ids=lambda p: p.name)
def test_regress_columns(path: Path) -> None:
    """The fuzzer's reproducers (tests/regress/) export on both twins as the reference does:
    overflowerror-community-id-cut-port.pcap, from fuzz/columns.py, is a TCP header cut
    before its destination port, whose conversation's Community ID raised OverflowError
    (a port of -1) on both paths before."""
    check(path.read_bytes())


def test_many_decoder_notes_on_both_twins() -> None:
    """A packet with more decoder notes than the C engine holds on its stack (48): the
    same row and Zeek letters from both twins (the notes go to the heap)."""
    from sockcap.analysis.zeek import ZeekConn
    from sockcap.codes import Note
    from sockcap.decode import decode_frame
    from sockcap.pipeline.columns import column_words
    from sockcap.pipeline.contract import engine_words

    frames = list(open_capture(io.BytesIO((CORPUS / "public" / "ssh.pcap").read_bytes())))
    if not frames:
        pytest.skip("corpus not present")
    notes = tuple([Note.RETRANSMISSION.value, "bad tcp option length"] * 40)
    out = []
    for cls in twins():
        engine = cls(analyze=True, keep=False, port=0, limit=0, hex=False, **engine_words())
        convs: list[Any] = []
        engine.columns(*column_words(), lambda c, e=engine, got=convs: got.append(
            (c.stream, ZeekConn.restored(*e.zeek(c)[:1], e.zeek(c)[1:]).history)), 100, 1 << 20)
        for frame in frames[:6]:
            p = decode_frame(frame)._replace(notes=notes)
            engine.packet(p, p.notes, None, None)
        engine.finish()
        out.append((engine.batch(), convs))
    assert all(o == out[0] for o in out)
    (n, columns), convs = out[0]
    assert n == 6 and len(columns[PACKET_COLUMN_KINDS.index("L", 9)][0]) == 4 * 7
    assert convs and "T" in convs[0][1]


def test_export_lets_its_engine_go() -> None:
    """Exporting file after file in one process (``--follow``, ``--jobs 1``) holds no
    engine once a file is done: the compiled Engine is not seen by the cyclic collector,
    so a cycle through its on_forget would keep its table and buffers (~3.6 MB a file
    here; it was so, found by the sanitizer run's memory)."""
    import gc
    import tracemalloc

    data = (CORPUS / "public" / "ssh.pcap").read_bytes() if CORPUS.is_dir() else b""
    if not data:
        pytest.skip("corpus not present")
    for cls in twins():
        column_export(cls, data)  # warm: caches, imports
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(5):
                column_export(cls, data)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert grown < 100_000, (cls, grown)
