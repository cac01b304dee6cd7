"""The command line as the README shows it: ./greenscreen.sh and the `greenscreen` command.

The stages that train or read run folders are run by other files: sweep, run-one and
`all slurm` by test_pipeline_sweep.py, analyze and report by test_sharing.py, final by
test_analysis_report.py, the executors by test_executors.py, gpu-check by
test_gpu_check.py, and the whole pipeline (`greenscreen all`, what `./greenscreen.sh`
runs) by test_own_code.py. Here: help, check, meters, and the command installed outside
the checkout.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = Path(sys.executable).parent / "greenscreen"
COMMANDS = ("sweep", "analyze", "final", "report", "check", "run-one", "meters", "gpu-check",
            "test", "setup")


def greenscreen(*args, cwd=ROOT, env=None, timeout=120):
    return subprocess.run([str(COMMAND), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_help_on_a_fresh_clone_answers_without_setting_anything_up(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    shutil.copy(ROOT / "greenscreen.sh", clone / "greenscreen.sh")  # this tree's, committed or not
    for word in ("--help", "-h", "help"):
        done = subprocess.run(["./greenscreen.sh", word], cwd=clone, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "PYTHON": "false"})
        assert done.returncode == 0, done.stderr
        listed = done.stdout.replace("|", " ").split()
        assert all(c in listed for c in COMMANDS), done.stdout
        assert "set -euo" not in done.stdout  # the text, not the script
    assert not (clone / ".venv").exists()  # PYTHON=false: any set-up would have failed too


def test_unknown_command_gets_argparse_s_error_with_the_choices():
    done = greenscreen("swep")
    assert done.returncode == 2
    assert "invalid choice: 'swep'" in done.stderr and "'sweep'" in done.stderr


def test_check_validates_the_shipped_config_and_names_a_bad_one(tmp_path):
    done = greenscreen("check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("greenscreen: config.yaml is valid: ")
    bad = tmp_path / "bad.yaml"
    bad.write_text("configuration:\n  optimizer: {values: [Nadam]}\n")
    done = greenscreen("check", "--config", str(bad))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"greenscreen: bad config: {bad}: "
                                  "configuration.optimizer.values[0]: got 'Nadam'")
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_meters_lists_every_source_with_its_state(fake_smi):  # two fake GPUs
    done = greenscreen("meters")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert set(rows) == {"nvidia-smi", "nvml", "rapl", "estimate"}
    assert "measured:nvidia-smi" in rows["nvidia-smi"] and rows["nvidia-smi"].endswith(
        "available")
    assert "estimated:cpu-time" in rows["estimate"]


def test_the_installed_command_works_outside_the_checkout(tmp_path):
    """pip installs both packages and the console script; nothing needs the checkout. It
    builds from a copy of the tree without build/ (pip built in the checkout, whose
    build/lib then carried a deleted module into every later install) and installs the
    sources' modules, no other."""
    import shutil

    site, tree = tmp_path / "site", tmp_path / "tree"
    at_root = {"build", ".venv", ".git", "sweeps", "report", "benchmarks", "tests"}

    def left_out(folder, names):  # the checkout's own outputs; a package's report/ stays
        top = Path(folder) == ROOT
        return [n for n in names if n == "__pycache__" or n.endswith(".egg-info")
                or (top and n in at_root)]

    shutil.copytree(ROOT, tree, ignore=left_out)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--target", str(site), str(tree)],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and "setuptools" in done.stderr:
        pytest.skip(f"no setuptools to build with here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    for package in ("greenscreen", "greenscreen_pipeline"):
        installed = {p.relative_to(site).as_posix() for p in (site / package).rglob("*.py")}
        sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py")}
        assert installed == sources, installed ^ sources
    away = tmp_path / "elsewhere"
    away.mkdir()
    (away / "config.yaml").write_text("configuration:\n  lr: {values: [0.01, 0.1]}\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import greenscreen_pipeline as p, greenscreen "
                            "as g; print(p.__file__); print(g.__file__)"], cwd=away, env=env,
                           capture_output=True, text=True, timeout=60)
    assert all(line.startswith(str(site)) for line in where.stdout.split()), where.stdout
    done = subprocess.run([str(site / "bin" / "greenscreen"), "check"], cwd=away, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "config.yaml is valid: " in done.stdout


def test_a_command_that_needs_the_pipeline_extra_says_so_before_any_work(tmp_path, capsys,
                                                                           monkeypatch):
    """`pip install .` without [pipeline]: `sweep` started and failed every run (no wrapt
    in its worker), `report` ended in a traceback (no reportlab)."""
    import importlib.util

    from greenscreen_pipeline import cli

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "wrapt" else found(name, *a))
    (tmp_path / "config.yaml").write_text("configuration: {model: {values: [ffnn]}}\n")
    config = str(tmp_path / "config.yaml")
    assert cli.main(["sweep", "--config", config, "--sweep-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "greenscreen sweep needs the pipeline's packages, and wrapt is not installed: " \
           "pip install 'greenscreen[pipeline]'" in err
    assert not (tmp_path / "s").exists()  # nothing started
    assert cli.main(["check", "--no-probe", "--config", config]) == 0  # check needs none


@pytest.mark.parametrize("given, near", [("Tensorflow", " (did you mean 'tensorflow'?)"),
                                         ("foo", "")])
def test_a_keras_backend_keras_does_not_know_is_one_error_before_any_work(
        tmp_path, capsys, monkeypatch, given, near):
    """KERAS_BACKEND=foo: `check` said "valid", then a traceback; every run of a sweep
    failed with "worker exited with code 1 without writing its status"."""
    from greenscreen_pipeline import cli

    (tmp_path / "config.yaml").write_text("configuration: {model: {values: [ffnn]}}\n")
    config = str(tmp_path / "config.yaml")
    monkeypatch.setenv("KERAS_BACKEND", given)
    for command in (["check"], ["sweep", "--sweep-dir", str(tmp_path / "s")]):
        assert cli.main([*command, "--config", config]) == 2
        assert capsys.readouterr().err == (
            f"greenscreen: KERAS_BACKEND={given!r} is not valid; allowed: tensorflow, jax, "
            f"torch, numpy, openvino{near}\n")
    assert not (tmp_path / "s").exists()  # nothing started
    assert cli.main(["status", "--config", config, "--sweep-dir", str(tmp_path)]) == 2
    assert "KERAS_BACKEND" not in capsys.readouterr().err  # status imports no backend
    monkeypatch.setenv("KERAS_BACKEND", "")  # empty: Keras's default, as Keras reads it
    assert cli.main(["check", "--no-probe", "--config", config]) == 0


def test_a_sweep_folder_that_is_a_file_is_one_error_for_every_command(tmp_path, capsys):
    """`sweep` ended in FileExistsError's traceback after its probe, `final` in another,
    `check` said nothing and `status` "no sweep yet"; `report --out` under a file too."""
    from greenscreen_pipeline import cli

    (tmp_path / "config.yaml").write_text("configuration: {model: {values: [ffnn]}}\n")
    config = str(tmp_path / "config.yaml")
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n")
    for command in ("check", "sweep", "final", "status", "analyze", "report"):
        for where, what in ((afile, afile), (afile / "sub", f"{afile} is a file, not a folder "
                                                           f"to make {afile / 'sub'} in")):
            assert cli.main([command, "--config", config, "--sweep-dir", str(where)]) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"greenscreen: --sweep-dir (settings.sweep_dir): {what}"), \
                (command, err)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    assert cli.main(["report", "--config", config, "--sweep-dir", str(sweep), "--out",
                     str(afile / "x.pdf")]) == 2
    assert capsys.readouterr().err.endswith(f"greenscreen: --out: {afile} is a file, not a "
                                            "folder; name a folder\n")


def test_sigterm_before_a_command_s_own_stop_is_a_stop_not_a_silent_death(monkeypatch,
                                                                           capsys):
    """SIGTERM during a sweep's probe (or any command before its workers start) ended it
    with exit -15 and no word, where SIGINT says "greenscreen: stopped" (exit 130)."""
    import signal

    from greenscreen_pipeline import cli, commands

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(commands, "run", lambda args: os.kill(os.getpid(), signal.SIGTERM))
    assert cli.main(["status"]) == 130
    assert capsys.readouterr().err == "greenscreen: stopped\n"
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's, put back
