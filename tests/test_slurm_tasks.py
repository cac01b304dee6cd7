"""What a Slurm array task learns from squeue about its peers, and what it does where
squeue cannot answer: a fake `squeue` executable on PATH answers as Slurm would (the
real single-node Slurm runs in test_executors.py)."""

import os
import stat

import pytest

from greenscreen_pipeline.executors import slurm_tasks
from greenscreen_pipeline.executors.slurm_tasks import ArrayJob, still_queued

SQUEUE = """#!/bin/sh
echo "$@" >> "{calls}"
{body}
"""


@pytest.fixture
def fake_squeue(tmp_path, monkeypatch):
    """`answer(body)`: squeue on PATH becomes a shell script with that body; returns the
    file where each call's arguments are written."""
    calls = tmp_path / "squeue-calls"
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    def answer(body: str):
        script = tmp_path / "squeue"
        script.write_text(SQUEUE.format(calls=calls, body=body))
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        return calls
    return answer


def test_tasks_that_ended_are_gone_and_the_rest_are_waited_for(fake_squeue):
    calls = fake_squeue('printf "0 RUNNING\\n1 CANCELLED\\n2 PENDING\\n3 TIMEOUT\\n"')
    job = ArrayJob("12", 0, shares=4)  # task k trains runs k, k + 4, ...
    assert job.tasks_to_run() == {0, 2}
    assert job.gone([1, 2, 3, 5, 6]) == [1, 3, 5]
    assert "--array --jobs 12 --states all --format %K %T" in calls.read_text()
    assert ArrayJob("12", 0).gone([1, 2]) == [1]  # a task per run


def test_a_task_squeue_no_longer_lists_has_ended(fake_squeue):
    fake_squeue('printf "0 RUNNING\\n"')  # task 1 was cancelled while pending: unlisted
    assert ArrayJob("12", 0, shares=2).gone([1, 3]) == [1, 3]


@pytest.mark.parametrize("body", [
    'echo "slurm_load_jobs error: Unable to contact slurm controller" >&2; exit 1',
    'echo "squeue: error: Invalid job id specified" >&2; exit 1',  # every task purged
    'printf "1 RUNNING\\n"',  # an answer without this very task says nothing
    'printf "not a squeue line\\n"',
    "exit 0"])
def test_where_squeue_cannot_say_every_peer_is_waited_for(fake_squeue, body):
    """Parking a run whose peer is still coming would cost a resubmission: where squeue's
    answer does not show this task itself, no peer counts as gone (the run waits, as it
    did before squeue was asked)."""
    fake_squeue(body)
    job = ArrayJob("12", 0, shares=2)
    assert job.tasks_to_run() is None and job.gone([1, 3]) == []


def test_without_squeue_or_when_it_hangs_nothing_counts_as_gone(fake_squeue, monkeypatch,
                                                                  tmp_path):
    path = os.environ["PATH"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no squeue at all
    assert ArrayJob("12", 0).gone([1]) == [] and still_queued(["12"]) is None
    monkeypatch.setenv("PATH", path)
    # It would answer that task 1 ended, after 3 s: past the timeout, it is not waited for.
    fake_squeue('sleep 3; printf "0 RUNNING\\n1 CANCELLED\\n"')
    monkeypatch.setattr(slurm_tasks, "SQUEUE_TIMEOUT_S", 0.5)
    assert ArrayJob("12", 0).gone([1]) == [] and still_queued(["12"]) is None
    monkeypatch.setattr(slurm_tasks, "SQUEUE_TIMEOUT_S", 30)
    assert ArrayJob("12", 0).gone([1]) == [1]  # the same answer, waited for


def test_a_second_submission_is_refused_only_while_a_job_is_queued(fake_squeue):
    fake_squeue('for j in $(echo "$4" | tr , " "); do\n'
                '  [ "$j" = 7 ] && echo "7 RUNNING"; [ "$j" = 8 ] && echo "8 COMPLETED"\n'
                'done; exit 0')
    assert still_queued(["7", "8", "9"]) == ["7"]  # 9: Slurm no longer knows it: ended
    assert still_queued(["not-a-job"]) == []
    fake_squeue('echo "squeue: error: Invalid job id specified" >&2; exit 1')
    assert still_queued(["8"]) == []  # purged long ago: ended
