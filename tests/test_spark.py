"""The Spark data source: spark.read.format("sockcap") gives the rows ``sockcap export``
writes, for the corpus, the loopback scenarios and compressed captures, whole or in byte
ranges of a pcap; the byte ranges' rows (without Spark) are the whole file's."""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from conftest import first_run_only, needs_corpus, sockcap
from loopback_scenarios import can_run, scenario_capture
from test_export import CORPUS_FILES, PUBLIC, export_three

from sockcap.errors import CaptureFileError
from sockcap.export.rows import WHOLE, TableRows, Window
from sockcap.export.split import pcap_window, splittable
from sockcap.pcapfile.reader import open_capture
from sockcap.pcapfile.source import open_input

SCENARIOS = ("refused", "reset", "server_reset", "half_close", "port_reuse", "zero_window")
# many records, records over the 1 MiB read of the walk's neighbours, one big record
SPLIT_FILES = ("ssh.pcap", "pim-packet-assortment.pcap", "bigtcp-ipv4.pcap",
               "telnet-iac-check-oobr.pcap", "mptcp-v1.pcap", "tfo-5c1fa7f9ae91.pcap")


def rows_of(path: Path, window: Window, table: str) -> list[dict[str, Any]]:
    """The rows of one table in ``window``, with those of the still-live conversations
    after damage (what the export and ``damaged=keep`` keep)."""
    out: list[dict[str, Any]] = []
    with ExitStack() as stack:
        rows = TableRows("x", (table,), window)
        try:
            for _table, row, _size in rows.run(open_capture(open_input(str(path), stack))):
                out.append(row)
        except CaptureFileError:
            out.extend(row for _table, row, _size in rows.live())
    return out


def ranges(size: int, step: int) -> list[tuple[int, int | None]]:
    return [(s, s + step if s + step < size else None) for s in range(0, size, step)]


def assert_ranges_give_the_whole(path: Path, step: int) -> int:
    """The rows of every range, put together, are the whole file's; how many ranges had rows."""
    windows = [pcap_window(path, s, e) for s, e in ranges(path.stat().st_size, step)]
    used = [w for w in windows if w is not None]
    assert sum(w.last for w in used) == 1  # one range writes the conversations still live
    for table, key in (("packets", "no"), ("conversations", "stream")):
        whole = rows_of(path, WHOLE, table)
        parts = [row for w in used for row in rows_of(path, w, table)]
        assert sorted(parts, key=lambda r: (r.get("proto", ""), r[key])) == \
            sorted(whole, key=lambda r: (r.get("proto", ""), r[key]))
    return len(used)


@needs_corpus
@pytest.mark.parametrize("name", SPLIT_FILES)
@pytest.mark.parametrize("step", [64, 997, 4096])
def test_byte_ranges_give_the_whole_files_rows(name: str, step: int) -> None:
    path = PUBLIC / name
    used = assert_ranges_give_the_whole(path, step)
    assert used > 1 if name == "ssh.pcap" else used >= 1  # 54 records in 12848 bytes


@needs_corpus
def test_byte_ranges_of_a_damaged_file(tmp_path: Path) -> None:
    """Cut inside the last record: the range holding the cut writes what is still live."""
    data = (PUBLIC / "ssh.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    assert assert_ranges_give_the_whole(cut, 500) > 1
    assert len(rows_of(cut, WHOLE, "packets")) == 53
    header_only = tmp_path / "empty.pcap"
    header_only.write_bytes(data[:24])
    assert pcap_window(header_only, 0, 10) is None  # the records end at 24: not here
    assert pcap_window(header_only, 10, None) == Window(1, 0, last=True)
    assert pcap_window(header_only, 0, None) == WHOLE


@needs_corpus
def test_what_is_split(tmp_path: Path) -> None:
    packed = tmp_path / "ssh.pcap.gz"
    packed.write_bytes(gzip.compress((PUBLIC / "ssh.pcap").read_bytes()))
    assert splittable(PUBLIC / "ssh.pcap")
    assert not splittable(packed)
    assert not splittable(PUBLIC / "bgp-enhanced-route-refresh-subtype.pcapng")


# --- Spark, in local mode ---------------------------------------------------------------------

def _spark_missing() -> str:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'sockcap[spark]')"
    if importlib.util.find_spec("pyarrow") is None:
        return "pyarrow is not installed (pip install 'sockcap[export]')"
    if shutil.which("java") is None:
        return "Java is not installed (apt-get install openjdk-17-jre-headless)"
    return ""


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One Spark session in local mode for this module's Spark tests, made once: the JVM's
    start and Spark's first job are most of what a small Spark job costs, and each test
    paid them again in a child process of its own. Its JVM is a child of this process (as
    the README's code makes it); after the module's last test the session is stopped and
    the JVM told to go (its standard input closed, as pyspark's gateway expects), then
    waited for by its PID with a time limit, and killed past it. The executors' Python is
    this one, where sockcap is installed."""
    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    import sockcap.spark

    names = ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, sys.executable))
    session = (SparkSession.builder.master("local[2]").appName("sockcap-test")
               .config("spark.ui.enabled", "false").getOrCreate())
    gateway = SparkContext._gateway
    try:
        session.sparkContext.setLogLevel("ERROR")
        sockcap.spark.register(session)
        yield session
    finally:
        session.stop()
        proc = getattr(gateway, "proc", None)
        if gateway is not None:
            gateway.shutdown()
        SparkContext._gateway = None
        SparkContext._jvm = None
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def spark_reads(spark: Any, folder: Path, out: Path, cut: Path) -> dict[str, Any]:
    """Spark's rows of every capture under ``folder`` (whole files and ranges of at most
    3000 bytes) and of the damaged ``cut`` (``damaged=keep``) into Parquet files in
    ``out``; the partitions planned, and whether ``damaged=fail`` named the damage."""
    import pyarrow.parquet as pq

    parts = {}
    for table in ("packets", "conversations"):
        for name, split in (("whole", "0"), ("split", "3000")):
            df = (spark.read.format("sockcap").option("table", table)
                  .option("maxPartitionBytes", split).load(str(folder) + "/**/*.pcap*"))
            parts[f"{table}-{name}"] = df.rdd.getNumPartitions()
            pq.write_table(df.toArrow(), f"{out}/{table}-{name}.parquet")
    kept = spark.read.format("sockcap").option("damaged", "keep").load(str(cut))
    pq.write_table(kept.toArrow(), f"{out}/cut.parquet")
    try:
        spark.read.format("sockcap").load(str(cut)).count()
        failed = ""
    except Exception as e:
        failed = str(e)
    return {"partitions": parts, "failed": "cut short" in failed and str(cut) in failed}


def sort_key(table: str) -> Any:
    if table == "packets":
        return lambda r: (r["capture"], r["no"])
    return lambda r: (r["capture"], r["proto"], r["stream"])


def exported(folder: Path, table: str) -> list[dict[str, Any]]:
    """The export's rows as Spark reads them: the partition's name as the last column."""
    import pyarrow.parquet as pq

    rows = []
    for part in sorted((folder / table).glob("capture=*/part-0.parquet")):
        capture = part.parent.name.split("=", 1)[1]
        rows.extend({**row, "capture": capture} for row in pq.read_table(part).to_pylist())
    return sorted(rows, key=sort_key(table))


def read_back(path: Path, table: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return sorted(pq.read_table(path).to_pylist(), key=sort_key(table))


@pytest.mark.slow
@needs_corpus
@pytest.mark.skipif(bool(_spark_missing()), reason=_spark_missing() or "ok")
@first_run_only("Spark's rows are the export's reference rows, made without the engine, and "
                "tests/test_export_columns.py proves both twins' export gives them")
def test_spark_rows_equal_the_export(tmp_path: Path, spark: Any) -> None:
    """Spark's rows (``spark.read.format("sockcap")``, whole files and byte ranges, and
    ``damaged=keep``) against the tables ``sockcap export`` wrote, file by file.

    Run once, by .ci/run's first run: Spark's executors make their rows with
    :class:`~sockcap.export.rows.TableRows`, which runs no engine (the same whatever
    SOCKCAP_PURE says), and the only engine here, the export's, is held to those same
    reference rows on both twins, batch for batch, by tests/test_export_columns.py over
    the corpus in every run. The second run (pure) would start a JVM to prove again what
    those two prove together."""
    captures = tmp_path / "captures"
    (captures / "corpus").mkdir(parents=True)
    for name in CORPUS_FILES:
        shutil.copy(PUBLIC / name, captures / "corpus" / name)
    (captures / "packed").mkdir()
    ssh = (PUBLIC / "ssh.pcap").read_bytes()
    (captures / "packed" / "ssh_gz.pcap.gz").write_bytes(gzip.compress(ssh))
    if importlib.util.find_spec("zstandard") is not None:
        import zstandard

        (captures / "packed" / "mptcp_zst.pcap.zst").write_bytes(
            zstandard.ZstdCompressor().compress((PUBLIC / "mptcp-v1.pcap").read_bytes()))
    if not can_run():
        (captures / "loopback").mkdir()
        for name in SCENARIOS:
            shutil.copy(scenario_capture(name), captures / "loopback" / f"{name}.pcap")
    files = sorted(str(p) for p in captures.rglob("*.pcap*"))
    result = sockcap("export", *files, "--to", str(tmp_path / "export"), "--jobs", "1",
                     timeout=300)
    assert result.returncode == 0, result.stderr
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(ssh[: len(ssh) - 30])
    result = sockcap("export", str(cut), "--to", str(tmp_path / "cut-export"), timeout=120)
    assert result.returncode == 4, result.stderr

    out = tmp_path / "spark"
    out.mkdir()
    got = spark_reads(spark, captures, out, cut)
    assert got["failed"], "damaged=fail names the file and its damage"
    parts = got["partitions"]
    assert parts["packets-whole"] == len(files)
    assert parts["packets-split"] > len(files)  # ssh.pcap and others in several ranges

    for table in ("packets", "conversations"):
        want = exported(tmp_path / "export", table)
        assert len(want) > 100 if table == "packets" else len(want) > 10
        for name in ("whole", "split"):
            assert read_back(out / f"{table}-{name}.parquet", table) == want, (table, name)
    assert read_back(out / "cut.parquet", "packets") == exported(tmp_path / "cut-export",
                                                                "packets")


needs_pyspark = pytest.mark.skipif(importlib.util.find_spec("pyspark") is None,
                                   reason="pyspark is not installed (pip install 'sockcap[spark]')")


@needs_pyspark
@needs_corpus
def test_what_a_path_names_and_the_partitions_planned(tmp_path: Path) -> None:
    """The driver's side, without a session: files found, partitions planned, bad paths
    and options said in one line."""
    from sockcap.errors import InputError
    from sockcap.spark import SockcapDataSource, capture_files

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(PUBLIC / "ssh.pcap", tmp_path / "a" / "ssh.pcap")
    (tmp_path / "a" / "whois.pcap.gz").write_bytes(gzip.compress((PUBLIC / "whois.pcap")
                                                                 .read_bytes()))
    (tmp_path / "a" / "notes.txt").write_text("not a capture")
    (tmp_path / "a" / ".hidden.pcap").write_bytes(b"")
    assert capture_files(str(tmp_path)) == [str(tmp_path / "a" / "ssh.pcap"),
                                            str(tmp_path / "a" / "whois.pcap.gz")]
    assert capture_files(str(tmp_path / "**" / "*.gz")) == [str(tmp_path / "a" / "whois.pcap.gz")]
    assert capture_files("file://" + str(tmp_path / "a" / "ssh.pcap")) == \
        [str(tmp_path / "a" / "ssh.pcap")]
    for bad, words in (("", "needs a path"), ("s3a://bucket/x.pcap", "every executor"),
                       (str(tmp_path / "b"), "no capture files"),
                       (str(tmp_path / "none.pcap"), "no such file")):
        with pytest.raises(InputError, match=words):
            capture_files(bad)

    def plan(**options: str) -> list[tuple[str, int, int | None]]:
        source = SockcapDataSource(options)
        reader = source.reader(source.schema())
        return [(Path(p.path).name, p.start, p.end) for p in reader.partitions()]

    assert plan(path=str(tmp_path / "a")) == [("ssh.pcap", 0, None), ("whois.pcap.gz", 0, None)]
    size = (PUBLIC / "ssh.pcap").stat().st_size  # 12848: ranges of 5000 bytes
    assert plan(path=str(tmp_path / "a"), maxPartitionBytes="5000") == [
        ("ssh.pcap", 0, 5000), ("ssh.pcap", 5000, 10000), ("ssh.pcap", 10000, None),
        ("whois.pcap.gz", 0, None)]  # compressed: whole
    assert size > 10000
    shutil.copy(PUBLIC / "ssh.pcap", tmp_path / "b" / "ssh.pcap")
    with pytest.raises(InputError, match="would both be capture=ssh"):
        plan(path=str(tmp_path / "**" / "*.pcap"))
    for options, words in (({"table": "flows"}, "the tables are"),
                           ({"damaged": "skip"}, "fail or keep"),
                           ({"maxPartitionBytes": "-1"}, "a whole number")):
        with pytest.raises(InputError, match=words):
            SockcapDataSource({"path": str(tmp_path), **options}).schema()


@needs_pyspark
@needs_corpus
def test_a_task_reads_without_a_session(tmp_path: Path) -> None:
    """An executor's side, called here: Arrow batches of the rows; damage and files that
    are not captures said with the file's name."""
    from sockcap.errors import InputError
    from sockcap.spark import CapturePart, SockcapDataSource

    def read(part: CapturePart, **options: str) -> list[dict[str, Any]]:
        source = SockcapDataSource({"path": str(tmp_path), **options})
        reader = source.reader(source.schema())
        return [row for batch in reader.read(part) for row in batch.to_pylist()]

    data = (PUBLIC / "ssh.pcap").read_bytes()
    rows = read(CapturePart(str(PUBLIC / "ssh.pcap"), "ssh"), batchRows="10")
    assert [r["no"] for r in rows] == list(range(1, 55))
    assert {r["capture"] for r in rows} == {"ssh"}
    ranged = read(CapturePart(str(PUBLIC / "ssh.pcap"), "ssh", 5000, 10000))
    window = pcap_window(PUBLIC / "ssh.pcap", 5000, 10000)
    assert window is not None and 1 < window.first < window.stop < 55
    assert ranged == [r for r in rows if window.first <= r["no"] < window.stop]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])
    with pytest.raises(CaptureFileError, match=f"{cut}: file cut short"):
        read(CapturePart(str(cut), "cut"))
    assert len(read(CapturePart(str(cut), "cut"), damaged="keep")) == 53
    text = tmp_path / "notes.pcap"
    text.write_text("not a capture")
    with pytest.raises(InputError, match=f"{text}: not a capture file"):
        read(CapturePart(str(text), "notes"))


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/test_export.py's export of three captures (its ``three``)."""
    return export_three(tmp_path_factory.mktemp("three"))


@pytest.mark.slow
@first_run_only("Spark reads Parquet files the export wrote, and the twins' export is proven "
                "the same rows by tests/test_export_columns.py and tests/test_export.py")
def test_spark_reads_the_same_tables(three: Path, spark: Any) -> None:
    """The README's Spark code (``spark.read.parquet`` of the export's folders), in local
    mode, on this module's session (``getOrCreate`` gives it, as it gives a program its
    running session). It was in tests/test_export.py with a JVM of its own.

    Run once, by .ci/run's first run: what is new here is Spark reading the export's
    Parquet folders (partitions, the ``capture`` column, the Zeek columns), and the
    export's rows on the pure twin are the compiled engine's, proven batch for batch by
    tests/test_export_columns.py and table for table against ``show --json`` / ``stats
    --json`` by tests/test_export.py::test_corpus_tables_equal_show_and_stats_json in
    each run."""
    from pyspark.sql import SparkSession

    assert SparkSession.builder.appName("sockcap").getOrCreate() is spark
    conv = spark.read.parquet(str(three) + "/conversations")
    rows = conv.groupBy("capture").count().orderBy("capture").collect()
    resets = conv.where("`conn_state` IN ('REJ', 'RSTO', 'RSTR')").count()
    packets = spark.read.parquet(str(three) + "/packets")
    got = {"convs": [[r["capture"], r["count"]] for r in rows], "packets": packets.count(),
           "resets": resets, "has_uid": "id.orig_h" in conv.columns}
    assert got == {"convs": [["dns_udp", 1], ["ssh", 1], ["tfo-5c1fa7f9ae91", 3]],
                   "packets": 70, "resets": 0, "has_uid": True}
