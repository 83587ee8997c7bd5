"""One rule for every writer: a missing folder is bad input (exit 2, one line, before
anything starts); ``captures/`` is the one folder sockcap makes itself. And
``follow --raw --out DIR``: the pcap writers' rules (no overwrite without --force, 0600),
the files listed, no bytes on stdout."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from conftest import needs_capture, sockcap
from loopback_scenarios import can_run, scenario_capture

needs_scenarios = pytest.mark.skipif(bool(can_run()), reason=can_run() or "ok")


@pytest.fixture(scope="module")
def pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small capture file for the commands that read one (written by the pcap writer)."""
    from sockcap.decode.records import LINKTYPE_ETHERNET, RawFrame
    from sockcap.pcapfile.writer import write_pcap

    path = tmp_path_factory.mktemp("in") / "in.pcap"
    eth = b"\0" * 12 + b"\x08\x00"
    ip = bytes.fromhex("4500002c00014000400600007f0000017f000001")
    tcp = bytes.fromhex("d43113890000000100000000600210000000000002040400")
    frame = eth + ip + tcp + b"\0\0"
    write_pcap(path, [RawFrame(1_700_000_000_000_000_000, LINKTYPE_ETHERNET, frame, len(frame), 0)],
               LINKTYPE_ETHERNET)
    return path


WRITERS = {
    "run --capture --out": lambda pcap, out: ("run", "--capture", "-m", "x", "--out", out),
    "capture -w": lambda pcap, out: ("capture", "-c", "1", "-w", out),
    "follow --raw --out": lambda pcap, out: ("follow", str(pcap), "--raw", "--out", out),
    "diagram -o": lambda pcap, out: ("diagram", str(pcap), "-o", out),
    "report -o": lambda pcap, out: ("report", str(pcap), "-o", out),
    "check -w": lambda pcap, out: ("check", "--server", "true", "-w", out),
    "lab --out": lambda pcap, out: ("lab", "--out", out),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_missing_folder_is_bad_input_before_anything_starts(
        writer: str, pcap: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    r = sockcap(*WRITERS[writer](pcap, str(missing / "out.x")), cwd=tmp_path, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [
        f"sockcap: cannot write {missing / 'out.x'}: no such folder {missing} (create it first; "
        "the one folder sockcap makes itself is captures/)"]
    assert r.stdout == ""  # nothing started: no "capturing on lo", no exchange
    assert not (tmp_path / "no").exists()
    assert not (tmp_path / "captures").exists()


FILE_WRITERS = ("run --capture --out", "capture -w", "diagram -o", "report -o", "check -w")


@pytest.mark.parametrize("writer", FILE_WRITERS)
def test_an_existing_file_without_force_is_said_before_anything_starts(
        writer: str, pcap: Path, tmp_path: Path) -> None:
    out = tmp_path / "there.x"
    out.write_bytes(b"mine")
    r = sockcap(*WRITERS[writer](pcap, str(out)), cwd=tmp_path, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [f"sockcap: {out} exists; use --force to overwrite"]
    assert r.stdout == "" and out.read_bytes() == b"mine"


def test_a_file_where_the_folder_should_be_is_bad_input(pcap: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    r = sockcap("diagram", str(pcap), "-o", str(tmp_path / "plain" / "x.svg"))
    assert r.returncode == 2
    assert r.stderr.strip().endswith(f"{tmp_path / 'plain'} is not a folder")


@needs_capture
def test_captures_is_the_one_folder_sockcap_makes(tmp_path: Path) -> None:
    r = sockcap("run", "--capture", "-m", "x", "--out", "captures/x.pcap", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "captures" / "x.pcap").is_file()
    r = sockcap("run", "--capture", "-m", "x", "--out", "captures/sub/x.pcap", cwd=tmp_path)
    assert r.returncode == 2 and "no such folder captures/sub" in r.stderr


# -- follow --raw --out ------------------------------------------------------------------------


@needs_scenarios
def test_follow_raw_files_are_listed_private_and_never_overwritten_silently(
        tmp_path: Path) -> None:
    path = scenario_capture("half_close")
    out = tmp_path / "out"
    r = sockcap("follow", str(path), "--raw", "--out", str(out))
    assert r.returncode == 0, r.stderr
    client, server = out / "stream-0-client.bin", out / "stream-0-server.bin"
    server_bytes = b"".join(b"response %d to 18 bytes\n" % i for i in range(5))
    assert r.stdout.splitlines() == [f"wrote {client} (18 bytes)",
                                     f"wrote {server} ({len(server_bytes)} bytes)"]
    assert client.read_bytes() == b"GET / HTTP/1.0\r\n\r\n"
    assert server.read_bytes() == server_bytes
    assert {stat.S_IMODE(p.stat().st_mode) for p in (client, server)} == {0o600}

    client.write_bytes(b"mine")
    again = sockcap("follow", str(path), "--raw", "--out", str(out))
    assert again.returncode == 2, again.stderr
    assert again.stderr.splitlines() == [
        f"sockcap: {out} already holds 2 stream files (stream-0-client.bin, ...); add --force "
        "to overwrite them"]
    assert client.read_bytes() == b"mine" and again.stdout == ""

    client.chmod(0o644)
    forced = sockcap("follow", str(path), "--raw", "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert client.read_bytes() == b"GET / HTTP/1.0\r\n\r\n"
    assert stat.S_IMODE(client.stat().st_mode) == 0o600
