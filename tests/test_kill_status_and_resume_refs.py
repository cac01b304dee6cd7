"""Two faults a hunt found in a sweep's kill and resume, each with real processes.

1. A worker (or run process) killed by SIGKILL, the OOM killer's signal, failed its run
   as documented, but the run's status.json still said "running": only readers that
   corrected it by attempts.jsonl (`RunFolder.outcome`) said failed. The executor that
   saw its worker die now records that one transition in status.json, under the run's
   lock, so the file and every reader agree.
2. settings.train, your own loop, was compared as written on resume: the same function
   spelled another way (the config in another folder) was refused as another loop, and
   the same spelling naming another file was accepted. It is compared by what it
   resolves to (the file and the function, or a copy of that file byte for byte), as are
   your own models and datasets.

The SIGKILL of (1) is sent by the run's own model (test_resume_hunt_faults.TRIPWIRE): a
layer kills its own process while the epoch's checkpoint saves its weights.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_resume_hunt_faults import TRIPWIRE

from greenscreen_pipeline import manifest, space
from greenscreen_pipeline.runfolder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
MODEL = TRIPWIRE + '''

def model(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    x = Tripwire()(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
'''
CONFIG = """
settings: {{runs: 1, epochs: 2, seed: 5, energy_source: estimate, isolate_runs: {isolate}}}
configuration:
  model: {{values: ["tripwire:model"]}}
  batch_size: {{values: [64]}}
  lr: {{values: [0.01]}}
  optimizer: {{values: [SGD]}}
"""


def sweep(config: Path, out: Path, *more: str, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "greenscreen_pipeline", "sweep", "local",
                           "--config", str(config), "--sweep-dir", str(out), *more], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("isolate", ["false", "true"])  # a warm worker; a run process
def test_a_run_killed_by_sigkill_says_failed_in_its_status_json_too(tmp_path, isolate):
    """Fault 1: the run's process is SIGKILLed mid-run; the sweep records the attempt's
    end, and status.json says failed, with the reason every reader gives."""
    (tmp_path / "tripwire.py").write_text(MODEL)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(isolate=isolate))
    out, armed = tmp_path / "sweep", tmp_path / "armed"
    armed.write_text("SIGKILL")
    result = sweep(config, out, env={"TRIPWIRE": str(armed)})
    assert not armed.exists(), result.stdout + result.stderr[-3000:]  # the layer killed it
    folder = RunFolder.of(out, 0)
    written = json.loads((folder.path / "status.json").read_text())
    outcome = folder.outcome()
    assert outcome["status"] == "failed", (outcome, result.stderr[-3000:])
    assert folder.attempts()[-1]["how"] == "signal SIGKILL"
    assert written["status"] == "failed", written
    assert written["reason"] == outcome["reason"] == "worker killed by SIGKILL (out of memory?)"
    if isolate == "false":  # --retry-failed trains it again, as any failed run
        again = sweep(config, out, "--retry-failed", "--no-probe")
        assert again.returncode == 0, again.stderr[-3000:]
        assert folder.outcome()["status"] == "done"
        assert json.loads((folder.path / "status.json").read_text())["status"] == "done"


BASE = """
settings: {{runs: 1, epochs: 3, seed: 5, energy_source: estimate, train: '{train}'}}
configuration:
  model: {{values: [{model}]}}
  lr: {{values: [0.01]}}
"""
LOOP = "def train(params, callbacks):\n    return {}\n\n\ndef other(params, callbacks):\n" \
       "    return {}\n"
NET = "def model(input_shape, num_classes, params):\n    return None\n"


def project(folder: Path) -> Path:
    """Your code in a package `proj` of `folder`: proj/loop.py and proj/net.py."""
    (folder / "proj").mkdir(parents=True)
    (folder / "proj" / "__init__.py").write_text("")
    (folder / "proj" / "loop.py").write_text(LOOP)
    (folder / "proj" / "net.py").write_text(NET)
    return folder / "proj"


def record(folder: Path, out: Path, train: str, model: str = "ffnn") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(BASE.format(train=train, model=model))
    manifest.record(space.load(path), out)


def test_your_own_loop_spelled_another_way_is_the_same_loop(tmp_path):
    """Fault 2: started with the config next to loop.py (`loop:train`), resumed with a
    config one folder up (`proj.loop:train`): the same file and function, accepted."""
    proj, out = project(tmp_path), tmp_path / "sweep"
    out.mkdir()
    record(proj, out, "loop:train")
    record(tmp_path, out, "proj.loop:train")
    record(proj, out, "loop:train")  # and back


@pytest.mark.parametrize("train", ["proj.loop:other", "loop:train"])
def test_another_function_or_another_file_is_still_refused(tmp_path, train):
    """Another function of the same file, or the same spelling naming another file (a copy
    of the config next to another loop.py), is another loop: refused, naming the key."""
    proj, out = project(tmp_path), tmp_path / "sweep"
    out.mkdir()
    record(proj, out, "loop:train")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "loop.py").write_text(LOOP + "\n# changed since\n")
    where = tmp_path if train.startswith("proj.") else elsewhere
    with pytest.raises(manifest.OtherSweep) as refused:
        record(where, out, train)
    assert "settings.train: " in str(refused.value)
    recorded = json.loads((out / "sweep.json").read_text())["settings"]
    assert recorded["train"] == "loop:train"  # kept


def test_your_own_model_naming_another_file_is_refused(tmp_path):
    """The space's entries keep their spelling (the runs record it, and resume by it), and
    the same spelling must still name the same file: a copy next to another net.py is
    another model."""
    proj, out = project(tmp_path), tmp_path / "sweep"
    out.mkdir()
    record(proj, out, "", model="'net:model'")
    record(proj, out, "", model="'net:model'")  # the same: accepted
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "net.py").write_text(NET)
    record(copy, out, "", model="'net:model'")  # a copy, byte for byte: the same code
    other = tmp_path / "other"
    other.mkdir()
    (other / "net.py").write_text(NET + "\n# changed\n")
    with pytest.raises(manifest.OtherSweep) as refused:
        record(other, out, "", model="'net:model'")
    said = str(refused.value)
    assert "net:model" in said and "name the code the sweep trained with" in said
    assert "set configuration" not in said  # nothing in the config to set back


def finished(out: Path, index: int = 0) -> None:
    (out / f"{index:03d}").mkdir()
    (out / f"{index:03d}" / "status.json").write_text(json.dumps({"status": "done"}))


def test_your_code_edited_in_place_is_resumed_with_a_warning_each_time(tmp_path, caplog):
    """The same file and function, other bytes, once a run has finished: resumed (fixing a
    bug and going on is common), but said on every resume, since the finished runs keep
    what the earlier version trained; the digest kept is the first one."""
    proj, out = project(tmp_path), tmp_path / "sweep"
    out.mkdir()
    record(proj, out, "loop:train", model="'net:model'")
    first = json.loads((out / "sweep.json").read_text())[manifest.CODE_DIGEST]
    assert set(first) == {"settings.train", "configuration.model net:model"}
    finished(out)
    with caplog.at_level("WARNING", logger="greenscreen.pipeline"):
        record(proj, out, "loop:train", model="'net:model'")
    assert not caplog.records  # unchanged: nothing to say
    (proj / "loop.py").write_text(LOOP + "\n# a bug fixed\n")
    with caplog.at_level("WARNING", logger="greenscreen.pipeline"):
        record(proj, out, "loop:train", model="'net:model'")
        record(proj, out, "loop:train", model="'net:model'")  # as Ray records a second time
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and said[0].startswith(
        f"settings.train ({proj / 'loop.py'}) has changed since the sweep in {out} first "
        "trained with it: its finished runs keep what the earlier version trained")
    assert "pass another --sweep-dir" in said[0]
    assert json.loads((out / "sweep.json").read_text())[manifest.CODE_DIGEST] == first
    again = subprocess.run(  # the next resume, a process of its own, says it again
        [sys.executable, "-c", "import sys; from greenscreen_pipeline import log, manifest, "
         "space; log.configure(); manifest.record(space.load(sys.argv[1]), sys.argv[2])",
         str(proj / "config.yaml"), str(out)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("has changed since the sweep") == 1
    assert again.stderr.startswith("greenscreen: warning: settings.train (")


def test_an_edit_before_any_run_finished_is_taken_as_the_sweeps_code(tmp_path, caplog):
    """No run keeps an earlier version yet (every run failed, or none finished): the edit
    is the code the sweep trains with, silently; and a sweep.json from before the digests
    existed takes them at its first resume, without a warning."""
    proj, out = project(tmp_path), tmp_path / "sweep"
    out.mkdir()
    record(proj, out, "loop:train")
    (proj / "loop.py").write_text(LOOP + "\n# the bug that failed every run, fixed\n")
    with caplog.at_level("WARNING", logger="greenscreen.pipeline"):
        record(proj, out, "loop:train")
        finished(out)
        manifest_file = out / "sweep.json"
        older = json.loads(manifest_file.read_text())
        del older[manifest.CODE_DIGEST]
        manifest_file.write_text(json.dumps(older))
        record(proj, out, "loop:train")
    assert not caplog.records
    (proj / "loop.py").write_text(LOOP + "\n# edited after a run finished\n")
    with caplog.at_level("WARNING", logger="greenscreen.pipeline"):
        record(proj, out, "loop:train")
    assert len(caplog.records) == 1


def test_another_space_is_refused_naming_the_first_key_that_differs(tmp_path):
    """"holds a sweep with another seed or search space" named neither the key nor the
    values, where an --epochs mismatch names both."""
    out = tmp_path / "sweep"
    out.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text("configuration:\n  lr: {values: [0.01, 0.1]}\n  units_x: {values: [64, 8]}\n"
                    "settings: {seed: 3}\n")
    manifest.record(space.load(path), out)
    path.write_text(path.read_text().replace("[64, 8]", "[64, 16]"))
    with pytest.raises(manifest.OtherSweep) as refused:
        manifest.record(space.load(path), out)
    assert f"{out} holds a sweep with another seed or search space (configuration.units_x: " \
           "this sweep [64, 8], this config [64, 16]); pass another --sweep-dir" in \
        str(refused.value)
    path.write_text(path.read_text().replace("[64, 16]", "[64, 8]").replace("seed: 3",
                                                                           "seed: 4"))
    with pytest.raises(manifest.OtherSweep, match=r"\(settings\.seed: this sweep 3, this "
                                                  r"config 4\)"):
        manifest.record(space.load(path), out)
