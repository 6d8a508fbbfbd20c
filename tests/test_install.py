"""The installer (systemd/install.sh, `make install`) into a staging root, and the unit's
hardening as systemd itself judges it (`systemd-analyze verify` and `security --offline`)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from installation import paths

REPO = paths.PROJECT_ROOT
INSTALLER = REPO / "systemd" / "install.sh"
UNIT = REPO / "systemd" / "bias-mirror.service"
DROPINS = REPO / "systemd" / "bias-mirror.service.d"
EXPOSURE_MAX = 3.0  # systemd's "OK" band; README "Installing on a kiosk" states the score
IS_ROOT = os.geteuid() == 0


def install(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["bash", str(INSTALLER), "--root", str(root), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def staging_root(tmp_path: Path) -> Path:
    """A root with the account files of a fresh Debian (useradd --prefix edits them)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    groups = {"root": 0, "video": 44, "render": 105, "input": 104, "plugdev": 46}
    (root / "etc" / "group").write_text("".join(f"{g}:x:{n}:\n" for g, n in groups.items()))
    (root / "etc" / "gshadow").write_text("".join(f"{g}:!::\n" for g in groups))
    return root


def members(root: Path, group: str) -> list[str]:
    for line in (root / "etc" / "group").read_text().splitlines():
        name, _, _, users = line.split(":")
        if name == group:
            return [u for u in users.split(",") if u]
    return []


def test_install_twice_then_uninstall(tmp_path: Path) -> None:
    root = staging_root(tmp_path)
    first = install(root)
    assert "change(s)" in first
    app, etc, units = (
        root / "opt/bias-mirror",
        root / "etc/bias-mirror",
        root / "etc/systemd/system",
    )

    # The app, as the unit expects it: the code and the shipped models, no tests.
    for rel in ("installation/cli.py", "assets/models/baseline/model.tflite", "pyproject.toml"):
        assert (app / rel).read_bytes() == (REPO / rel).read_bytes(), rel
    assert not (app / "tests").exists()
    # The unit, enabled like `systemctl enable` does it.
    assert (units / "bias-mirror.service").read_text() == UNIT.read_text()
    wants = units / "multi-user.target.wants" / "bias-mirror.service"
    assert os.readlink(wants) == "/etc/systemd/system/bias-mirror.service"
    # Config from the defaults; the credential file LoadCredential= needs, root only.
    unit_text = UNIT.read_text()
    assert "LoadCredential=mqtt_password:/etc/bias-mirror/mqtt_password" in unit_text
    assert (etc / "kiosk.yaml").read_text() == (REPO / "assets/config/default.yaml").read_text()
    cred = etc / "mqtt_password"
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600 and cred.read_text() == ""
    if IS_ROOT:
        passwd = (root / "etc/passwd").read_text()
        assert re.search(
            r"^bias-mirror:x:\d+:\d+:[^:]*:/nonexistent:/usr/sbin/nologin$", passwd, re.M
        )
        for group in ("video", "render", "input", "plugdev"):
            assert "bias-mirror" in members(root, group), group
    else:
        assert "user bias-mirror not created" in first

    # Idempotent: a second run changes nothing and says so.
    second = install(root)
    assert "nothing to change" in second, second

    # A technician's config and password survive a re-install; a damaged app file is mended
    # and a file the new version no longer has is removed.
    (etc / "kiosk.yaml").write_text("installation_id: foyer-1\n")
    cred.write_text("hunter2\n")
    (app / "installation/cli.py").write_text("broken\n")
    (app / "installation/gone.py").write_text("# from an older version\n")
    third = install(root, "--coral")
    assert "updated 2 file(s)" in third and "coral.conf" in third
    assert (app / "installation/cli.py").read_bytes() == (REPO / "installation/cli.py").read_bytes()
    assert not (app / "installation/gone.py").exists()
    assert (etc / "kiosk.yaml").read_text() == "installation_id: foyer-1\n"
    assert cred.read_text() == "hunter2\n"
    assert (units / "bias-mirror.service.d/coral.conf").is_file()

    # Uninstall keeps config, password and state; --purge removes them and the user.
    (root / "var/lib/bias-mirror").mkdir(parents=True)
    (root / "var/lib/bias-mirror/language").write_text("de\n")
    out = install(root, "--uninstall")
    assert not app.exists() and not (units / "bias-mirror.service").exists()
    assert not wants.exists() and not wants.is_symlink()
    assert not (units / "bias-mirror.service.d").exists()
    assert (etc / "kiosk.yaml").is_file() and (root / "var/lib/bias-mirror/language").is_file()
    assert "kept /etc/bias-mirror" in out
    assert "nothing to remove" in install(root, "--uninstall")
    install(root, "--uninstall", "--purge")
    assert not etc.exists() and not (root / "var/lib/bias-mirror").exists()
    assert "bias-mirror" not in (root / "etc/passwd").read_text()
    assert "bias-mirror" not in (root / "etc/group").read_text()


def test_installer_refuses_bad_options(tmp_path: Path) -> None:
    for args, message in (
        (["--bogus"], "unknown option --bogus"),
        (["--purge"], "--purge only goes with --uninstall"),
        (["--root", str(tmp_path / "missing")], "is not a folder"),
    ):
        proc = subprocess.run(
            ["bash", str(INSTALLER), *args], check=False, capture_output=True, text=True
        )
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)


def _analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed: apt-get install systemd (.ci/run does this)")
    return exe


def _testable_unit(tmp_path: Path) -> Path:
    """The unit and its drop-ins, with ExecStart pointing at this venv's `bias-mirror` (verify
    checks that the command exists)."""
    folder = tmp_path / "units"
    (folder / "bias-mirror.service.d").mkdir(parents=True)
    exe = Path(sys.executable).parent / "bias-mirror"
    assert exe.is_file(), f"{exe} missing: pip install -e '.[runtime,dev]'"
    text = UNIT.read_text().replace("/opt/bias-mirror/.venv/bin/bias-mirror", str(exe))
    (folder / "bias-mirror.service").write_text(text)
    for example in DROPINS.glob("*.conf.example"):
        shutil.copy(
            example, folder / "bias-mirror.service.d" / example.name.removesuffix(".example")
        )
    return folder / "bias-mirror.service"


def test_unit_verifies(tmp_path: Path) -> None:
    unit = _testable_unit(tmp_path)
    proc = subprocess.run(
        [_analyze(), "verify", str(unit)], check=False, capture_output=True, text=True, cwd=tmp_path
    )
    # Unknown keys or bad values are only warnings with exit code 0: any output is a failure.
    assert proc.returncode == 0 and not proc.stderr.strip() and not proc.stdout.strip(), (
        proc.stdout + proc.stderr
    )


def test_unit_exposure_below_3(tmp_path: Path) -> None:
    exe = _analyze()
    unit = _testable_unit(tmp_path)
    proc = subprocess.run(
        [exe, "security", "--offline=yes", "--no-pager", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    if "--offline" in proc.stderr and "unrecognized" in proc.stderr:
        pytest.skip(f"this systemd-analyze has no --offline (systemd >= 250): {proc.stderr[:200]}")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout[-2000:] + proc.stderr
    score = float(match.group(1))
    assert score < EXPOSURE_MAX, proc.stdout
    # The README states the score the unit gets.
    assert f"{score:.1f} OK" in (REPO / "README.md").read_text()
    # The kiosk's own needs survive the hardening.
    text = UNIT.read_text()
    for needed in ("Type=notify", "WatchdogSec=", "DeviceAllow=char-video4linux rw"):
        assert needed in text


# What the unit's MemoryDenyWriteExecute=true enforces, set on a process by the kernel itself
# (PR_SET_MDWE, Linux >= 6.3): the kiosk (display, both models with XNNPACK, heatmaps, OpenCV)
# and the soak (paho, a broker) must run under it.
MDWE_RUN = """
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(f"SKIP: PR_SET_MDWE unsupported ({ctypes.get_errno()})")
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("writable+executable memory was not refused")
except PermissionError:
    pass
from installation.cli import main
rc = main(["demo", "--max-frames", "60"]) or main(["bench", "--soak", "60"])
sys.exit(rc)
"""


def test_kiosk_runs_without_writable_executable_memory(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "SDL_VIDEODRIVER": "dummy",
        "SDL_AUDIODRIVER": "dummy",
    }
    proc = subprocess.run(
        [sys.executable, "-c", MDWE_RUN],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    if proc.stderr.startswith("SKIP:"):
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "MemoryDenyWriteExecute=true" in UNIT.read_text()
