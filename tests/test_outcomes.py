"""How an attempt that left no status is read (interrupted or failed), and the advice the
console and the Slurm jobs give for each state. Run folders are written directly."""

from __future__ import annotations

import json
import logging

import pytest

from greenscreen_pipeline import cli, endings, final, space
from greenscreen_pipeline.executors import slurm
from greenscreen_pipeline.run import execute
from greenscreen_pipeline.runfolder import RunFolder

NO_SPACE_TAIL = ("Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
                 "OSError: [Errno 28] could not write /s/000/status.json: No space left on "
                 "device (is the disk full?)")


def attempt(tmp_path, how: str, status: str | None = "running", tail: str = "") -> dict:
    """Run 000 whose one attempt ended `how`, status.json saying `status` (None: none)."""
    folder = tmp_path / "000"
    folder.mkdir()
    if status:
        (folder / "status.json").write_text(json.dumps({"status": status}))
    events = [{"event": "start", "host": "elsewhere", "pid": 1, "time": 1.0},
              {"event": "end", "time": 2.0, "how": how, "wall_s": 1.0, "stderr_tail": tail}]
    (folder / "attempts.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return RunFolder(folder).outcome()


def test_a_full_disk_interrupts_the_run_it_could_not_record():
    stops = endings.STOP_EXITS  # the codes run.execute returns
    assert f"exit {execute.NO_SPACE}" in stops and f"exit {execute.INTERRUPTED}" in stops


def test_the_no_space_exit_code_interrupts_the_run(tmp_path):
    out = attempt(tmp_path, "exit 75", tail="run 000 interrupted: [Errno 28] No space left on "
                  "device (is the disk full?)")
    assert out["status"] == "interrupted"
    assert out["reason"].startswith("the disk is full ([Errno 28] No space left on device")
    assert "free some space and run the same command again" in out["reason"]


def test_a_process_that_died_of_a_full_disk_is_interrupted(tmp_path):
    out = attempt(tmp_path, "exit 1", tail=NO_SPACE_TAIL)
    assert out["status"] == "interrupted" and "No space left on device" in out["reason"]


@pytest.mark.parametrize("how", ["exit 130", "exit 143", "signal SIGTERM", "signal SIGINT"])
def test_a_run_stopped_before_it_wrote_its_status_resumes(tmp_path, how):
    # stop_after_failures with several workers: a worker still starting gets SIGTERM
    out = attempt(tmp_path, how, status=None)
    assert out["status"] == "interrupted" and "stopped" in out["reason"]


@pytest.mark.parametrize("how", ["signal SIGKILL", "exit 1", "exit 137"])
def test_a_crash_or_the_oom_killer_still_fails_the_run(tmp_path, how):
    out = attempt(tmp_path, how, tail="Traceback ...\nValueError: broken")
    assert out["status"] == "failed"


def test_no_recommendation_says_what_to_do_per_state(tmp_path):
    def said(*states):
        rows = [{"run": i, "status": s, "reason": f"why {s}"} for i, s in enumerate(states)]
        return final.no_recommendation(tmp_path, {"done": 0, "runs": len(rows),
                                                  "failed_or_skipped": rows})

    interrupted = said("interrupted", "interrupted")
    assert "--retry-failed" not in interrupted and "failed runs" not in interrupted
    assert "Run the same sweep command again to resume the interrupted runs" in interrupted
    failed = said("failed")
    assert "--retry-failed" in failed and "same sweep command" not in failed
    both = said("failed", "interrupted")
    assert "--retry-failed" in both and "same sweep command" in both


def _config(tmp_path, runs=2):
    path = tmp_path / "config.yaml"
    path.write_text(f"settings: {{runs: {runs}, epochs: 1, seed: 1}}\n"
                    "configuration:\n  batch_size: {values: [64]}\n")
    return space.load(path, {"sweep_dir": str(tmp_path / "sweep")})


def test_the_report_job_log_is_named_by_its_job_id(tmp_path):
    array, report, _ = slurm.scripts(_config(tmp_path), tmp_path / "sweep")
    assert "/slurm/%x-%A_%a.out" in array
    assert "/slurm/%x-%j.out" in report and "%a" not in report


def test_only_failed_runs_left_says_how_to_retry_them(tmp_path, caplog):
    out = tmp_path / "sweep"
    for i, state in enumerate(["done", "failed"]):
        (out / f"{i:03d}").mkdir(parents=True)
        (out / f"{i:03d}" / "status.json").write_text(json.dumps({"status": state}))
    (out / "000" / "summary.json").write_text("{}")
    with caplog.at_level(logging.INFO, logger="greenscreen.pipeline"):
        slurm.submit(_config(tmp_path), out, dry_run=True)
    said = caplog.text
    assert "every run is finished" not in said
    assert "1 failed run(s) are kept as failed" in said and "--retry-failed" in said


def test_slurm_time_help_says_it_is_per_array_task(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["sweep", "slurm", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "per-run time limit" not in text and "array task" in text


def test_a_file_too_large_or_a_killed_process_is_not_a_full_disk(tmp_path):
    # EFBIG is not fixed by freeing space; SIGKILL (out of memory) is not a full disk
    # because a library logged one on its way
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    big = attempt(tmp_path / "a", "exit 1", tail="OSError: [Errno 27] File too large: 'x'")
    assert big["status"] == "failed"
    killed = attempt(tmp_path / "b", "signal SIGKILL",
                     tail="OSError: [Errno 28] No space left on device: 'cache'")
    assert killed["status"] == "failed" and "SIGKILL" in killed["reason"]
