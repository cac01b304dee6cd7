"""A sweep folder that cannot be written (an archive): analysed and reported into a folder
you name; a command that must write there says so in one line (issue 33).

Root writes whatever a file's mode says, so under root the folder is made read-only by a
read-only bind mount in a mount namespace of the command's own (`unshare -m`)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_runfolder_faults import sweep

ROOT = Path(__file__).resolve().parents[1]


def read_only_mounts() -> str | None:
    """Why a read-only bind mount cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare or mount is not installed"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount --bind -o ro / /"],
                           capture_output=True, text=True, check=False)
    return None if probe.returncode == 0 else f"no read-only bind mount: {probe.stderr.strip()}"


def greenscreen(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`greenscreen ARGS` with `folder` read-only for it alone."""
    command = [sys.executable, "-m", "greenscreen_pipeline", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    else:
        why = read_only_mounts()
        if why:
            pytest.skip(f"root writes whatever a file's mode says, and {why}")
        command = ["unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
                   str(folder), *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=folder.parent,
                          env=env, check=False, timeout=600)


@pytest.fixture
def archive(tmp_path):
    folder = sweep(tmp_path / "archive")
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"configuration": {"batch_size": {"values": [16, 32]}},
                                      "settings": {"sweep_dir": str(folder), "runs": 2}}))
    yield folder, config
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)


def test_a_read_only_sweep_is_analysed_and_reported_into_a_folder_you_name(archive, tmp_path):
    folder, config = archive
    out = tmp_path / "analysis"
    done = greenscreen(folder, "analyze", "--config", str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "analysis.json").exists() and (out / "pareto.csv").exists()
    assert not (folder / "analysis.json").exists()
    pdf = tmp_path / "report.pdf"
    done = greenscreen(folder, "report", "--config", str(config), "--analysis", str(out),
                       "--out", str(pdf))
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("command", ["analyze", "sweep"])
def test_a_sweep_folder_that_cannot_be_written_is_said_in_one_line(archive, command):
    folder, config = archive
    done = greenscreen(folder, command, "--config", str(config))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "PermissionError" not in done.stderr
    said = [line for line in done.stderr.splitlines()
            if line.startswith("greenscreen:") and not line.startswith("greenscreen: warning")]
    assert len(said) == 1 and f"cannot write into {folder}" in said[0]
    assert ("analyze --out DIR" if command == "analyze" else "--sweep-dir") in said[0]
