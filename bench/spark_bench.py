"""The Spark data source against ``sockcap export -j 2`` and ``tshark -T json`` on the same
files, and DuckDB over the exported (hive-partitioned) tables for the README's queries.

Usage::

    python bench/make_capture.py --packets 200000 --out bench/data/loopback-200k.pcap
    python bench/spark_bench.py [--file bench/data/loopback-200k.pcap] [--parts 4]

The file is cut into ``--parts`` files of equal packet counts (``editcap -c``), the way
a course's captures come: several files, one per student or per hour. Then, each in its
own process started and waited for here (wall seconds; CPU seconds, user + system, of the
process and the children it waited for, from ``os.wait4``):

* ``sockcap export FILES --to DIR -j 2`` (both tables, Parquet);
* ``tshark -T json -r FILE`` for every file, two at a time (the anchor: what people load
  into other tools), output to files;
* the data source in ``local[2]``: ``spark.read.format("sockcap")`` of the packets table
  written to Spark's ``noop`` sink (every column of every row made, nothing written),
  one partition a file, then the same with ``maxPartitionBytes`` a quarter of a file
  (byte ranges, each range's task decoding the records before it again), then the
  conversations table. Spark's session start (JVM) and a first read that starts the
  Python workers are left out of the figures; the JVM's CPU is not in ``os.wait4``'s figure (Spark's launcher does
  not wait for it), so only wall time is compared for Spark;
* the three ``sockcap query`` examples of the README over the export, with DuckDB.

Packets per second count the packets read (the packets table has a row for each). The figures are printed as
Markdown for bench/RESULTS.md; nothing is asserted (speed is never a test). The machine's
load average is printed with them: on a shared machine wall times say little alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

SPARK_JOB = """
import json, sys, time
t0 = time.monotonic()
from pyspark.sql import SparkSession
import sockcap.spark
spark = (SparkSession.builder.master("local[2]").appName("sockcap-bench")
         .config("spark.ui.enabled", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
sockcap.spark.register(spark)
started = time.monotonic() - t0
folder, split = sys.argv[1], sys.argv[2]
out = {"start": started}
# warm up: the Python workers start and import sockcap once, outside the figures
spark.read.format("sockcap").option("table", "conversations").load(folder).count()
for name, table, max_bytes in (("packets", "packets", "0"), ("packets, byte ranges", "packets", split),
                               ("conversations", "conversations", "0")):
    t = time.monotonic()
    df = (spark.read.format("sockcap").option("table", table)
          .option("maxPartitionBytes", max_bytes).load(folder))
    parts = df.rdd.getNumPartitions()
    df.write.format("noop").mode("overwrite").save()
    out[name] = [time.monotonic() - t, parts]
out["rows"] = spark.read.format("sockcap").load(folder).count()
print(json.dumps(out))
spark.stop()
"""


def run(argv: list[str], stdout: Path | None = None,
        env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system of it and its waited-for children)."""
    out = os.open(stdout or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    read, write = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: stdout to the file or the pipe, stderr to /dev/null
        os.dup2(out if stdout else write, 1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(read)
        try:
            os.execvpe(argv[0], argv, env or os.environ.copy())
        finally:
            os._exit(127)
    os.close(write)
    os.close(out)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv[:3])}... failed with {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime, b"".join(chunks).decode()


def sockcap_argv() -> list[str]:
    script = Path(sys.executable).with_name("sockcap")
    return [str(script)] if script.exists() else [sys.executable, "-m", "sockcap"]


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=BENCH / "data" / "loopback-200k.pcap")
    parser.add_argument("--parts", type=int, default=4)
    args = parser.parse_args()
    if not args.file.exists():
        sys.exit(f"{args.file} is missing: python bench/make_capture.py --packets 200000 "
                 f"--out {args.file}")
    for tool in ("editcap", "tshark", "java"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="sockcap-spark-bench-"))
    try:
        bench(args.file, args.parts, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def split_file(path: Path, parts: int, folder: Path) -> list[Path]:
    packets = int(subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True,
                                 text=True, check=True).stdout.split()[-1])
    folder.mkdir()
    subprocess.run(["editcap", "-F", "pcap", "-c", str(-(-packets // parts)), str(path),
                    str(folder / "lab.pcap")], check=True)
    return sorted(folder.iterdir())


def bench(path: Path, parts: int, work: Path) -> None:
    files = split_file(path, parts, work / "captures")
    packets = sum(int(subprocess.run(["capinfos", "-c", "-M", str(f)], capture_output=True,
                                     text=True, check=True).stdout.split()[-1]) for f in files)
    size = sum(f.stat().st_size for f in files)
    print(f"{len(files)} files, {packets:,} packets, {size / 1e6:.1f} MB; load {load()}",
          file=sys.stderr)
    rows: list[tuple[str, float, float | None, str]] = []

    wall, cpu, _ = run([*sockcap_argv(), "export", *map(str, files), "--to",
                        str(work / "export"), "-j", "2"])
    rows.append(("`sockcap export FILES --to DIR -j 2` (both tables)", wall, cpu, load()))

    start = time.monotonic()
    cpu = 0.0
    for pair in range(0, len(files), 2):  # two at a time, as export -j 2
        children = []
        for f in files[pair:pair + 2]:
            out = open(work / f"{f.name}.json", "wb")
            children.append((subprocess.Popen(["tshark", "-T", "json", "-r", str(f)],
                                              stdout=out, stderr=subprocess.DEVNULL), out))
        for child, out in children:
            _pid, _status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(_status)
            out.close()
            cpu += usage.ru_utime + usage.ru_stime
            Path(out.name).unlink()
    rows.append(("`tshark -T json -r FILE > out`, two at a time (anchor)",
                 time.monotonic() - start, cpu, load()))

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    split = str(max(1 << 16, files[0].stat().st_size // 4))
    _w, _c, out = run([sys.executable, "-c", SPARK_JOB, str(work / "captures"), split],
                      env=env)
    spark = json.loads(out.strip().splitlines()[-1])
    assert spark["rows"] == packets, (spark["rows"], packets)
    for name in ("packets", "packets, byte ranges", "conversations"):
        seconds, nparts = spark[name]
        rows.append((f"Spark data source: {name} ({nparts} partitions, local[2])",
                     seconds, None, load()))

    readme = (ROOT / "README.md").read_text()
    queries = [q.replace('\\"', '"') for q in
               re.findall(r'sockcap query out "((?:[^"\\]|\\.)*)"', readme)]
    duck = []
    for sql in queries:
        wall, cpu, _ = run([*sockcap_argv(), "query", str(work / "export"), sql])
        duck.append((sql.split("\n")[0][:60], wall, cpu))

    anchor = rows[1][1]
    print(f"Run {datetime.date.today()}: `python bench/spark_bench.py --file {path} "
          f"--parts {parts}`: {len(files)} files, {packets:,} packets, {size / 1e6:.1f} MB; "
          f"Spark session start {spark['start']:.1f} s (not in the figures).\n")
    print("| reader | wall s | CPU s | packets/s (wall) | vs tshark (wall) | load during |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, wall, cpu, during in rows:
        cpu_text = f"{cpu:.1f}" if cpu is not None else "-"
        print(f"| {name} | {wall:.1f} | {cpu_text} | {packets / wall:,.0f} | "
              f"{anchor / wall:.2f}x | {during} |")
    print("\n| DuckDB query (sockcap query) | wall s | CPU s |")
    print("| --- | ---: | ---: |")
    for sql, wall, cpu in duck:
        print(f"| `{sql}...` | {wall:.2f} | {cpu:.2f} |")


if __name__ == "__main__":
    main()
