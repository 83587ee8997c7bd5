"""sockcap export / query: the tables equal show --json and stats --json row for row, Zeek's
conn_state on real loopback exchanges, the Community ID's published vectors, DuckDB and
Spark over a folder of captures."""

from __future__ import annotations

import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, needs_corpus, sockcap
from loopback_scenarios import can_run, scenario_capture

from sockcap.analysis.flowid import community_id
from sockcap.render.timeline import endpoint

needs_pyarrow = pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None,
                                   reason="pyarrow is not installed (pip install 'sockcap[export]')")
needs_duckdb = pytest.mark.skipif(importlib.util.find_spec("duckdb") is None,
                                  reason="duckdb is not installed (pip install 'sockcap[export]')")
needs_scenarios = pytest.mark.skipif(bool(can_run()), reason=can_run() or "ok")

PUBLIC = CORPUS / "public"
# TCP sessions, resets, UDP, IPv6, several link types, a damaged file, a pcapng
CORPUS_FILES = ("ssh.pcap", "whois.pcap", "dns_tcp.pcap", "tfo-5c1fa7f9ae91.pcap",
                "pptp.pcap", "mptcp-v1.pcap", "tcp_rst_diag_payload.pcap", "dns_udp.pcap",
                "bgp-enhanced-route-refresh-subtype.pcapng", "LINKTYPE_RAW_ipv6.pcap",
                "syslog_udp.pcap", "gso-ipv6.pcap", "802.1ad_QinQ.pcap")
STATS_KEYS = ("proto", "stream", "client", "server", "roles", "packets", "bytes",
              "payload_bytes", "start", "duration", "irtt", "notes", "ended")


# --- Community ID: the spec's published vectors -------------------------------------------
# From corelight/community-id-spec, baseline/README.md (tables made by make-tables.py):
# (proto, src, dst, sport, dport, default, seed=1, sha1 hex without base64)
SPEC_TABLE = [
    (6, "1.2.3.4", "5.6.7.8", 1122, 3344, "wCb3OG7yAFWelaUydu0D+125CLM=",
     "HhA1B+6CoLbiKPEs5nhNYN4XWfk=", "c026f7386ef200559e95a53276ed03fb5db908b3"),
    (6, "5.6.7.8", "1.2.3.4", 3344, 1122, "wCb3OG7yAFWelaUydu0D+125CLM=",
     "HhA1B+6CoLbiKPEs5nhNYN4XWfk=", "c026f7386ef200559e95a53276ed03fb5db908b3"),
    (17, "1.2.3.4", "5.6.7.8", 1122, 3344, "0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
     "OShq+iKDAMVouh/4bMxB9Sz4amw=", "d0cbbd227431eb3e1988264cffb1d78b658c84e8"),
    (17, "5.6.7.8", "1.2.3.4", 3344, 1122, "0Mu9InQx6z4ZiCZM/7HXi2WMhOg=",
     "OShq+iKDAMVouh/4bMxB9Sz4amw=", "d0cbbd227431eb3e1988264cffb1d78b658c84e8"),
    (132, "1.2.3.4", "5.6.7.8", 1122, 3344, "EKt4MsxuyaE6mL+hmrEkQ9csDD8=",
     "uitchpn5MMGAQKBJh7bIr/bAr7s=", "10ab7832cc6ec9a13a98bfa19ab12443d72c0c3f"),
    (1, "1.2.3.4", "5.6.7.8", 8, 0, "crodRHL2FEsHjbv3UkRrfbs4bZ0=",
     "9pr4ZGTICiuZoIh90RRYE2RyXpU=", "72ba1d4472f6144b078dbbf752446b7dbb386d9d"),
    (1, "5.6.7.8", "1.2.3.4", 0, 0, "crodRHL2FEsHjbv3UkRrfbs4bZ0=",
     "9pr4ZGTICiuZoIh90RRYE2RyXpU=", "72ba1d4472f6144b078dbbf752446b7dbb386d9d"),
    (1, "1.2.3.4", "5.6.7.8", 11, 0, "f/YiSyWqczrTgfUCZlBUnvHRcPk=",
     "1DD7cWGC/Yg91YGsQeni8du3pIA=", "7ff6224b25aa733ad381f5026650549ef1d170f9"),
    (58, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
     128, 0, "0bf7hyMJUwt3fMED7z8LIfRpBeo=", "IO27GQzPuCtNnwFvjWALMHu5tJE=",
     "d1b7fb872309530b777cc103ef3f0b21f46905ea"),
    (58, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
     129, 0, "0bf7hyMJUwt3fMED7z8LIfRpBeo=", "IO27GQzPuCtNnwFvjWALMHu5tJE=",
     "d1b7fb872309530b777cc103ef3f0b21f46905ea"),
    (58, "fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D",
     146, 0, "fYC8+pz24E+EhANP1EZhpX0Dw10=", "Cv4IKJe56BNkF0MBW2YxQ3Nwc3s=",
     "7d80bcfa9cf6e04f8484034fd44661a57d03c35d"),
    (46, "1.2.3.4", "5.6.7.8", None, None, "ikv3kmf89luf73WPz1jOs49S768=",
     "/buhqeOmaRCopOZFy9HnoJd5XW8=", "8a4bf79267fcf65b9fef758fcf58ceb38f52efaf"),
    (46, "fe80:1011:1213:1415:1617:1819:1A1B:1C1D", "fe80:0001:0203:0405:0607:0809:0A0B:0C0D",
     None, None, "wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "j6EyyfBzL4vWKHFXgUqb5Az3OxM=",
     "c10ff69b0ae75cfe259897077462f978f8d1f9ed"),
]
# baseline/baseline_deflt.json (flows of pcaps/combined.pcap.gz; ICMP "ports" as there)
SPEC_BASELINE = [
    (58, "fe80::200:86ff:fe05:80da", "fe80::260:97ff:fe07:69ea", 135, 136, "dGHyGvjMfljg6Bppwm3bg0LO8TY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 136, 135, "dGHyGvjMfljg6Bppwm3bg0LO8TY="),
    (58, "fe80::260:97ff:fe07:69ea", "fe80::200:86ff:fe05:80da", 135, 136, "zavyT/cezQr1fmImYCwYnMXbgck="),
    (58, "3ffe:501:1800:2345::2", "3ffe:507:0:1:200:86ff:fe05:80da", 3, 0, "2ObVBgIn28oZvibYZhZMBgh7WdQ="),
    (58, "3ffe:501:410:0:2c0:dfff:fe47:33e", "3ffe:507:0:1:200:86ff:fe05:80da", 1, 4, "hLZd0XGWojozrvxqE0dWB1iM6R0="),
    (58, "3ffe:507:0:1:200:86ff:fe05:80da", "3ffe:501:0:1001::2", 128, 129, "+TW+HtLHvV1xnGhV1lv7XoJrqQg="),
    (58, "fe80::200:86ff:fe05:80da", "ff02::2", 133, 134, "hO+sN4H+MG5MY/8hIrXPqc4ZQz0="),
    (58, "fe80::260:97ff:fe07:69ea", "ff02::1", 134, 133, "pkvHqCL88/tg1k4cPigmZXUtL00="),
    (1, "192.168.0.89", "192.168.0.1", 8, 0, "X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (1, "192.168.0.1", "192.168.0.89", 0, 8, "X0snYXpgwiv9TZtqg64sgzUn6Dk="),
    (1, "10.0.0.1", "10.0.0.2", 11, 0, "YHxtAirCG//0OzkcVAukqKQN9xM="),
    (6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, "/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
    (6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, "/qFaeAR+gFe1KYjMzVDsMv+wgU4="),
    (132, "192.168.170.8", "192.168.170.56", 7, 7, "MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    (132, "192.168.170.56", "192.168.170.8", 7, 7, "MP2EtRCAUIZvTw6MxJHLV7N7JDs="),
    (6, "128.232.110.120", "66.35.250.204", 34855, 80, "LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (6, "66.35.250.204", "128.232.110.120", 80, 34855, "LQU9qZlK+B5F3KDmev6m5PMibrg="),
    (17, "192.168.1.52", "8.8.8.8", 54585, 53, "d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (17, "8.8.8.8", "192.168.1.52", 53, 54585, "d/FP5EW3wiY1vCndhwleRRKHowQ="),
    (46, "10.1.12.1", "10.1.12.2", None, None, "KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
    (46, "10.1.12.2", "10.1.12.1", None, None, "KHlLkgoJW7ifUTyTSgyVfkFHzKw="),
]


@pytest.mark.parametrize("vector", SPEC_TABLE, ids=lambda v: f"{v[0]}-{v[1]}-{v[3]}")
def test_community_id_equals_the_spec_tables(vector: tuple[Any, ...]) -> None:
    proto, src, dst, sport, dport, default, seed1, hexdigest = vector
    assert community_id(proto, src, dst, sport, dport) == "1:" + default
    assert community_id(proto, src, dst, sport, dport, seed=1) == "1:" + seed1
    assert community_id(proto, src, dst, sport, dport, base64_=False) == "1:" + hexdigest


@pytest.mark.parametrize("vector", SPEC_BASELINE, ids=lambda v: f"{v[0]}-{v[1]}-{v[3]}")
def test_community_id_equals_the_spec_baseline(vector: tuple[Any, ...]) -> None:
    proto, src, dst, sport, dport, expected = vector
    assert community_id(proto, src, dst, sport, dport) == "1:" + expected


# --- round trips -----------------------------------------------------------------------------

def export(*args: str) -> subprocess.CompletedProcess[str]:
    result = sockcap("export", *args, timeout=300)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def read_table(folder: Path, table: str, capture: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = pq.read_table(
        folder / table / f"capture={capture}" / "part-0.parquet").to_pylist()
    for row in rows:  # an Arrow map reads back as a list of pairs
        if "notes" in row and table == "conversations":
            row["notes"] = dict(row["notes"])
    return rows


def show_json(path: Path) -> list[dict[str, Any]]:
    """``show --json``'s packet records without ``type`` (the discriminator of a stream
    that mixes packets, calls and kernel events: every row of the packets table is one)."""
    result = sockcap("show", "--json", str(path))
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {row.pop("type") for row in rows} <= {"packet"}
    return rows


def stats_json(path: Path) -> dict[str, Any]:
    result = sockcap("stats", "--json", str(path))
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def as_show_json(row: dict[str, Any]) -> dict[str, Any]:
    """A packets-table row in ``show --json``'s shape (payload back to hex)."""
    out = dict(row)
    out["payload_hex"] = out.pop("payload").hex()
    return out


def assert_tables_match(folder: Path, path: Path, capture: str) -> None:
    packets = read_table(folder, "packets", capture)
    expected = show_json(path)
    assert len(packets) == len(expected) > 0
    for got, want in zip(packets, expected, strict=True):
        assert as_show_json(got) == want
    convs = sorted(read_table(folder, "conversations", capture),
                   key=lambda r: (r["proto"], r["stream"]))
    stats = stats_json(path)["conversations"]
    assert [{k: c[k] for k in STATS_KEYS} for c in convs] == stats
    for c in convs:
        assert c["orig_bytes"] == c["payload_bytes"]["client_to_server"]
        assert endpoint(c["id.orig_h"], c["id.orig_p"]) == c["client"]
        assert endpoint(c["id.resp_h"], c["id.resp_p"]) == c["server"]


@needs_corpus
@needs_pyarrow
def test_corpus_tables_equal_show_and_stats_json(tmp_path: Path) -> None:
    files = [PUBLIC / name for name in CORPUS_FILES]
    result = export(*map(str, files), "--to", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for path in files:
        assert_tables_match(tmp_path, path, path.stem)
    assert "packets: " in result.stdout and "conversations: " in result.stdout


@needs_corpus
def test_ndjson_packets_are_show_json_lines(tmp_path: Path) -> None:
    path = PUBLIC / "ssh.pcap"
    result = export(str(path), "--to", str(tmp_path), "--format", "ndjson")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "packets" / "capture=ssh" / "part-0.ndjson").read_text().splitlines()
    assert [json.loads(line) for line in lines] == show_json(path)
    convs = [json.loads(line) for line in
             (tmp_path / "conversations" / "capture=ssh" / "part-0.ndjson").read_text().splitlines()]
    assert [{k: c[k] for k in STATS_KEYS} for c in convs] == stats_json(path)["conversations"]


@needs_scenarios
@needs_pyarrow
@pytest.mark.parametrize(("name", "state", "history"), [
    ("refused", "REJ", "Sr"),
    ("half_close", "SF", None),  # FIN both ways: Zeek's normal close
    ("server_reset", "RSTR", None),
    ("reset", "RSTO", None),
    ("no_answer", "S0", "S"),  # a SYN retransmitted with the same seq is one S
])
def test_loopback_conn_state_is_zeeks(name: str, state: str, history: str | None,
                                      tmp_path: Path) -> None:
    path = scenario_capture(name)
    result = export(str(path), "--to", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert_tables_match(tmp_path, path, name)
    [conv] = read_table(tmp_path, "conversations", name)
    assert conv["conn_state"] == state
    if history is not None:
        assert conv["history"] == history
    else:
        assert conv["history"].startswith("ShA")  # SYN, SYN-ACK, the client's ACK
    assert conv["community_id"] == community_id(6, conv["id.orig_h"], conv["id.resp_h"],
                                                conv["id.orig_p"], conv["id.resp_p"])


@needs_corpus
@needs_pyarrow
def test_row_groups_stay_bounded(tmp_path: Path) -> None:
    """Rows are written in groups of at most GROUP_ROWS (memory does not grow with the file)."""
    import pyarrow.parquet as pq

    from sockcap.export import sinks
    from sockcap.export.job import ExportJob, export_file

    old = sinks.GROUP_ROWS["packets"]
    sinks.GROUP_ROWS["packets"] = 8
    try:
        result = export_file(ExportJob(str(PUBLIC / "ssh.pcap"), "ssh", str(tmp_path),
                                       ("packets",), "parquet"))
    finally:
        sinks.GROUP_ROWS["packets"] = old
    meta = pq.ParquetFile(tmp_path / "packets" / "capture=ssh" / "part-0.parquet").metadata
    assert result.rows["packets"] == meta.num_rows == 54
    assert meta.num_row_groups == 7
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) == 8


# --- errors ----------------------------------------------------------------------------------

def test_export_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture")
    result = export(str(bad), "--to", str(tmp_path / "out"), "--format", "ndjson")
    assert result.returncode == 3
    assert result.stderr.splitlines()[0].startswith(f"sockcap: {bad}: ")
    assert not list((tmp_path / "out").rglob("part-*"))
    result = export(str(bad), "--to", str(tmp_path / "out"), "--tables", "packets,flows")
    assert result.returncode == 2 and "flows" in result.stderr
    other = tmp_path / "x"
    other.mkdir()
    (other / "notes.pcap").write_text("")
    result = export(str(bad), str(other / "notes.pcap"), "--to", str(tmp_path / "out"))
    assert result.returncode == 2 and "capture=notes" in result.stderr


@needs_corpus
def test_a_damaged_file_keeps_what_was_read(tmp_path: Path) -> None:
    cut = tmp_path / "cut.pcap"
    data = (PUBLIC / "ssh.pcap").read_bytes()
    cut.write_bytes(data[: len(data) - 30])
    good = tmp_path / "whois.pcap"
    shutil.copy(PUBLIC / "whois.pcap", good)
    result = export(str(cut), str(good), "--to", str(tmp_path / "out"), "--format", "ndjson")
    assert result.returncode == 4
    assert result.stderr.count("sockcap: ") == 2  # the damaged file, then the total
    lines = (tmp_path / "out" / "packets" / "capture=cut" / "part-0.ndjson").read_text()
    assert len(lines.splitlines()) == 53
    assert (tmp_path / "out" / "packets" / "capture=whois" / "part-0.ndjson").exists()


@needs_pyarrow
@needs_corpus
def test_jobs_share_the_files_and_write_what_one_process_does(tmp_path: Path) -> None:
    """``-j 2`` and ``-j 3`` (this process takes files too, the workers the others one at a
    time) write the same tables as ``-j 1``, every file once, a damaged one reported."""
    import pyarrow.parquet as pq

    names = ["ssh.pcap", "dns_udp.pcap", "whois.pcap", "tfo-5c1fa7f9ae91.pcap"]
    files = [str(PUBLIC / n) for n in names]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes((PUBLIC / "ssh.pcap").read_bytes()[:3000])
    files.append(str(cut))
    tables = {}
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"j{jobs}"
        result = export(*files, "--to", str(out), "--jobs", jobs)
        assert result.returncode == 4, result.stderr  # the damaged file
        assert result.stderr.count("cut.pcap") == 1
        parts = sorted(p.relative_to(out) for p in out.rglob("part-*"))
        assert len(parts) == 2 * len(files)
        tables[jobs] = {str(p): pq.read_table(out / p) for p in parts}
    assert tables["2"].keys() == tables["1"].keys() == tables["3"].keys()
    for part, table in tables["1"].items():
        assert tables["2"][part].equals(table) and tables["3"][part].equals(table), part


# --- DuckDB and Spark over a folder of three captures ------------------------------------------

def export_three(out: Path) -> Path:
    """The tables of three captures exported into ``out`` (the module's ``three``, and
    tests/test_spark.py's)."""
    if importlib.util.find_spec("pyarrow") is None or not CORPUS.is_dir():
        pytest.skip("needs pyarrow and the corpus")
    files = [str(PUBLIC / n) for n in ("ssh.pcap", "tfo-5c1fa7f9ae91.pcap", "dns_udp.pcap")]
    result = export(*files, "--to", str(out), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_three(tmp_path_factory.mktemp("three"))


def query(folder: Path, sql: str, *options: str) -> subprocess.CompletedProcess[str]:
    return sockcap("query", str(folder), sql, *options)


@needs_duckdb
def test_duckdb_counts_over_three_captures(three: Path) -> None:
    result = query(three, "SELECT capture, count(*) AS packets FROM packets "
                          "GROUP BY capture ORDER BY capture", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"capture": "dns_udp", "packets": 2}, {"capture": "ssh", "packets": 54},
        {"capture": "tfo-5c1fa7f9ae91", "packets": 14}]
    result = query(three, 'SELECT capture, proto, count(*) AS n, sum(orig_bytes) AS up, '
                          'count(DISTINCT community_id) AS ids FROM conversations '
                          'GROUP BY ALL ORDER BY capture', "--csv")
    assert result.stdout.splitlines() == [
        "capture,proto,n,up,ids", "dns_udp,UDP,1,56,1", "ssh,TCP,1,5377,1",
        "tfo-5c1fa7f9ae91,TCP,3,4,3"]


@needs_duckdb
def test_readme_queries_run(three: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Many captures: tables for DuckDB and Spark")[1].split("\n## ")[0]
    queries = [q.replace('\\"', '"') for q in
               re.findall(r'sockcap query out "((?:[^"\\]|\\.)*)"', section)]
    assert len(queries) == 3
    for sql in queries:
        result = query(three, sql)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1].endswith("rows)")


@needs_duckdb
def test_query_errors_are_one_line(three: Path, tmp_path: Path) -> None:
    result = query(three, "SELECT nope FROM conversations")
    assert result.returncode == 2
    assert result.stderr.startswith("sockcap: query failed: ") and len(result.stderr.splitlines()) == 1
    result = query(tmp_path, "SELECT 1")
    assert result.returncode == 2 and "sockcap export" in result.stderr


# The README's Spark code over the `three` folder: tests/test_spark.py, on that module's
# one Spark session.


def test_help_imports_neither_pyarrow_nor_duckdb() -> None:
    code = ("import sys\nfrom sockcap.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nfrom sockcap.cli import cli\n"
            "import click\nctx = click.Context(cli)\n"
            "[cli.get_command(ctx, n) for n in ('export', 'query')]\n"
            "print(sorted(m for m in ('pyarrow', 'duckdb', 'scapy', 'pyshark') "
            "if m in sys.modules), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stderr.strip() == "[]"
    assert "export" in result.stdout and "query" in result.stdout


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_only() -> None:
    from sockcap.commands.export import _Progress

    tty = _Terminal()
    progress = _Progress(tty)
    progress.show(1, 3, 250_000, 2.0)
    progress.clear()
    assert tty.getvalue() == "\r\x1b[K1/3 files, 250,000 packets, 125,000 packets/s\r\x1b[K"
    pipe = io.StringIO()
    quiet = _Progress(pipe)
    quiet.show(1, 3, 250_000, 2.0)
    quiet.clear()
    assert pipe.getvalue() == "" and quiet.seconds == 2.0
