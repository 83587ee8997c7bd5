"""Under sudo, what sockcap saves belongs to the user who ran sudo (sockcap/owner.py).

Real captures run as root with ``SUDO_UID``/``SUDO_GID`` set to the user nobody, as sudo
sets them; the files are then read back as nobody, the way a student opens them."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, needs_capture, sockcap

from sockcap.owner import sudo_user

NOBODY = pwd.getpwnam("nobody")
NOBODY_IDS = (NOBODY.pw_uid, NOBODY.pw_gid)
AS_SUDO: dict[str, str | None] = {"SUDO_UID": str(NOBODY.pw_uid), "SUDO_GID": str(NOBODY.pw_gid)}
NO_SUDO: dict[str, str | None] = {"SUDO_UID": None, "SUDO_GID": None}
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
OTHER_IDS = (4321, 4321)  # a user who is neither root nor nobody


def owner(path: Path) -> tuple[int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid


def shown_as_nobody(path: Path, cwd: Path) -> list[str]:
    """``sockcap show`` run as nobody: the timeline's lines."""
    res = sockcap("show", str(path.relative_to(cwd)), user="nobody", cwd=cwd)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def udp_sender(port: int) -> subprocess.Popen[bytes]:
    """200 datagrams to ``port``, 5 ms apart (stopped by its PID by the caller)."""
    code = (f"import socket, time; s=socket.socket(2, 2)\n"
            f"for i in range(200): s.sendto(b'x', ('127.0.0.1', {port})); time.sleep(0.005)")
    return subprocess.Popen([sys.executable, "-c", code])


@needs_capture
@needs_root
@pytest.mark.parametrize("out", [None, "captures/run.pcap"])
def test_run_capture_under_sudo_saves_for_the_user(tmp_path: Path, out: str | None) -> None:
    res = sockcap("run", "--capture", *(["--out", out] if out else []), cwd=tmp_path, env=AS_SUDO)
    assert res.returncode == 0, res.stderr
    if out is None:
        folders = [tmp_path / "captures"]
        [pcap] = folders[0].iterdir()
    else:
        folders, pcap = [tmp_path / "captures"], tmp_path / out  # the one folder it makes
    assert [owner(f) for f in (*folders, pcap)] == [NOBODY_IDS] * (len(folders) + 1)
    assert owner(tmp_path) == (0, 0)  # it existed: not sockcap's to give
    assert pcap.stat().st_mode & 0o777 == 0o600
    assert "warning" not in res.stderr
    lines = shown_as_nobody(pcap, tmp_path)
    assert len(lines) == 14 and "[SYN]" in lines[0] and "teardown" in lines[-1]


@needs_capture
@needs_root
def test_capture_w_under_sudo_saves_for_the_user(tmp_path: Path) -> None:
    port, out = free_udp_port(), tmp_path / "c.pcap"
    sender = udp_sender(port)
    try:
        res = sockcap("capture", "-c", "5", "-q", "-f", f"udp dst port {port}", "-w", str(out),
                      env=AS_SUDO)
    finally:
        sender.kill()
        sender.wait()
    assert res.returncode == 0, res.stderr
    assert owner(out) == NOBODY_IDS and out.stat().st_mode & 0o777 == 0o600
    assert "warning" not in res.stderr
    lines = shown_as_nobody(out, tmp_path)
    assert len([line for line in lines if " UDP " in line]) == 5, lines


@needs_capture
@needs_root
def test_the_file_is_the_users_from_creation_not_only_at_the_end(tmp_path: Path) -> None:
    """Checked while the capture still runs, then after an interrupt: never root's."""
    port, out = free_udp_port(), tmp_path / "i.pcap"
    env = dict(os.environ, NO_COLOR="1", **{k: v for k, v in AS_SUDO.items() if v})
    proc = subprocess.Popen([sys.executable, "-m", "sockcap", "capture", "-q", "-f",
                             f"udp dst port {port}", "-w", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while (not out.exists() or out.stat().st_size < 24) and time.monotonic() < deadline:
            time.sleep(0.01)  # 24 bytes: the file header, written after the change of owner
        assert proc.poll() is None and owner(out) == NOBODY_IDS
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert owner(out) == NOBODY_IDS
    shown_as_nobody(out, tmp_path)


@needs_capture
@needs_root
def test_follow_raw_out_under_sudo_saves_for_the_user(tmp_path: Path) -> None:
    pcap = tmp_path / "run.pcap"
    assert sockcap("run", "--capture", "--out", str(pcap), env=NO_SUDO).returncode == 0
    out = tmp_path / "streams"
    res = sockcap("follow", str(pcap), "--raw", "--out", str(out), env=AS_SUDO)
    assert res.returncode == 0, res.stderr
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["stream-0-client.bin", "stream-0-server.bin"]
    assert {owner(p) for p in (out, *files)} == {NOBODY_IDS}
    # run again over the files, one of them someone else's: that one keeps its owner
    os.chown(files[0], *OTHER_IDS)
    files[1].unlink()
    res = sockcap("follow", str(pcap), "--raw", "--out", str(out), "--force", env=AS_SUDO)
    assert res.returncode == 0, res.stderr
    assert [owner(f) for f in files] == [OTHER_IDS, NOBODY_IDS]
    assert files[0].read_bytes() == b"helloworldquit"


@needs_capture
@needs_root
def test_without_sudo_nothing_changes_owner(tmp_path: Path) -> None:
    res = sockcap("run", "--capture", cwd=tmp_path, env=NO_SUDO)
    assert res.returncode == 0, res.stderr
    [pcap] = (tmp_path / "captures").iterdir()
    assert owner(tmp_path / "captures") == owner(pcap) == (0, 0)


@needs_capture
@needs_root
def test_an_existing_file_overwritten_with_force_keeps_its_owner(tmp_path: Path) -> None:
    out = tmp_path / "theirs.pcap"
    out.write_bytes(b"old")
    os.chown(out, *OTHER_IDS)
    res = sockcap("run", "--capture", "--force", "--out", str(out), env=AS_SUDO)
    assert res.returncode == 0, res.stderr
    assert owner(out) == OTHER_IDS and out.stat().st_mode & 0o777 == 0o600
    assert out.read_bytes()[:4] == b"\xd4\xc3\xb2\xa1"  # a pcap now


@needs_capture
@needs_root
def test_a_failed_change_of_owner_is_one_warning_and_the_capture_is_kept(tmp_path: Path) -> None:
    """Root without CAP_CHOWN (as in a container that drops it): fchown fails for real."""
    out = tmp_path / "captures" / "x.pcap"  # captures/: a folder sockcap makes
    env = dict(os.environ, NO_COLOR="1", **{k: v for k, v in AS_SUDO.items() if v})
    res = subprocess.run(["setpriv", "--bounding-set=-chown", sys.executable, "-m", "sockcap",
                          "run", "--capture", "--out", str(out)], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr
    warnings = res.stderr.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("sockcap: warning: cannot give"), warnings
    assert f"saved 14 packets to {out}" in res.stdout
    assert owner(out) == owner(out.parent) == (0, 0)
    assert sockcap("show", str(out)).returncode == 0


@needs_root
def test_not_root_ignores_sudo_variables(tmp_path: Path) -> None:
    """As nobody, SUDO_UID=0 is not trusted: nothing is given (and nothing warned)."""
    work = tmp_path / "work"
    work.mkdir()
    pcap = work / "echo-tcp.pcap"  # a copy nobody may read, whatever the checkout's modes
    pcap.write_bytes((Path(__file__).parent / "golden" / "echo-tcp.pcap").read_bytes())
    pcap.chmod(0o644)
    res = sockcap("follow", str(pcap), "--raw", "--out", "raw", user="nobody", cwd=work,
                  env={"SUDO_UID": "0", "SUDO_GID": "0"})
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert {owner(p) for p in (work / "raw", *(work / "raw").iterdir())} == {NOBODY_IDS}


@pytest.mark.parametrize("uid, gid, expected", [
    ("1000", "1000", (1000, 1000)),
    ("1000", None, None),
    (None, "1000", None),
    ("", "", None),
    ("-1", "1000", None),
    ("1000x", "1000", None),
    (" 1000", "1000", None),
    ("\u0661\u0660", "1000", None),  # Arabic-Indic digits: str.isdigit() alone says yes
])
def test_sudo_user_trusts_only_plain_numbers_and_only_as_root(
        monkeypatch: pytest.MonkeyPatch, uid: str | None, gid: str | None,
        expected: tuple[int, int] | None) -> None:
    for name, value in (("SUDO_UID", uid), ("SUDO_GID", gid)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    user = sudo_user()
    if os.geteuid() != 0:
        assert user is None
    else:
        assert (None if user is None else (user.uid, user.gid)) == expected
