"""Atomic writes: whole files only, and the same permissions a plain open() gives."""

import os
import stat
import subprocess
import sys

from greenscreen.fileio import atomic_write_json


def test_atomic_write_leaves_no_temp_file_and_replaces_whole(tmp_path):
    path = tmp_path / "sub" / "summary.json"
    atomic_write_json(path, {"energy_j": float("nan"), "n": 1})
    atomic_write_json(path, {"n": 2})
    assert path.read_text() == '{\n  "n": 2\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]


def test_atomic_files_get_the_permissions_of_the_umask(tmp_path):
    # A fresh interpreter, so that the umask is the one the module reads at import.
    code = ("import sys; from greenscreen.fileio import atomic_write_text as w; "
            "w(sys.argv[1], 'x'); open(sys.argv[2], 'w').close()")
    for umask in (0o022, 0o077, 0o002):
        made, plain = tmp_path / f"made-{umask:o}", tmp_path / f"plain-{umask:o}"
        subprocess.run([sys.executable, "-c", code, str(made), str(plain)], check=True,
                       preexec_fn=lambda m=umask: os.umask(m))
        assert stat.S_IMODE(made.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
        assert stat.S_IMODE(made.stat().st_mode) == 0o666 & ~umask


FULL_DISK = """
import json, resource, signal, sys
from greenscreen.fileio import atomic_write_json
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # as if the disk had 4 KiB left
try:
    atomic_write_json(sys.argv[1], {"rows": list(range(5000))})
except OSError as exc:
    print(exc)
"""


def test_a_full_disk_gives_a_clear_error_and_leaves_the_finished_file_whole(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"energy_j": 812.4})  # a finished result
    before = path.read_bytes()
    out = subprocess.run([sys.executable, "-c", FULL_DISK, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"could not write {path}: File too large (is the disk full?)" in out.stdout
    assert "the previous summary.json, if any, is unchanged" in out.stdout
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temp file left
