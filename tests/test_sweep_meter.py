"""The sweep's own GPU meter (ledger.DeviceLedger) when two invocations share one sweep
folder: one meters, the other does not, so each joule of the boards is counted once and
no invocation's session overwrites another's. The real ledger over the fake nvidia-smi."""

import pytest
from conftest import UUID0
from test_sweep_totals import ESTIMATE, SMI, measure_a_window, sessions, write_run

from greenscreen_pipeline import ledger, sweep_total

GPU_W = 150.0


def test_two_invocations_on_one_sweep_meter_its_gpus_once(fake_smi, tmp_path):
    """Two `sweep local` on one folder at once (their runs shared out by claims) each
    started a meter of the same GPU: the overlap counted twice, and each rewrote
    sweep_energy.json with the sessions it had read at its start, dropping the other's."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}}])
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    first = ledger.DeviceLedger(sweep, 2, "nvidia-smi").start()
    second = ledger.DeviceLedger(sweep, 2, "nvidia-smi").start()
    assert first.active and not second.active  # the second runs without a meter
    a, b = measure_a_window(first)
    write_run(sweep, 0, [(a, b, {"gpu": GPU_W * (b - a)})], {"gpu": SMI})
    c, d = measure_a_window(first)  # the second invocation's run, on the same GPU
    write_run(sweep, 1, [(c, d, {"gpu": GPU_W * (d - c)})], {"gpu": SMI})
    second.stop()
    first.stop()
    recorded = sessions(sweep)
    assert len(recorded) == 1
    total = sweep_total.of(sweep)
    assert total.total_j == pytest.approx(recorded[0]["energy_j"])  # each joule once
    assert total.total_j == pytest.approx(GPU_W * ((b - a) + (d - c)), rel=0.1)

    later = ledger.DeviceLedger(sweep, 2, "nvidia-smi").start()  # the lock is free again
    assert later.active
    measure_a_window(later)
    later.stop()
    assert len(sessions(sweep)) == 2 and sessions(sweep)[0] == recorded[0]


def test_the_sweep_meter_reads_only_the_summaries_that_changed(fake_smi, tmp_path):
    """The meter records its session after every run, from every run's windows and GPUs:
    it read every summary.json twice each time (O(n^2) over a sweep). Kept, it reads a
    folder again only once it changed, and finds the same windows."""
    from test_sweep_totals import settle

    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}}])
    sweep = tmp_path / "sweep"
    books = ledger.DeviceLedger(sweep, 3, "nvidia-smi").start()
    for i in range(3):
        a, b = measure_a_window(books, 0.1)
        write_run(sweep, i, [(a, b, {"gpu": GPU_W * (b - a)})], {"gpu": SMI})
        settle(sweep / f"{i:03d}")
    books.record()
    assert books.summaries.reads == 3  # both questions answered from one read of each
    books.record()
    assert books.summaries.reads == 3
    c, d = measure_a_window(books, 0.1)  # run 001 resumed: a second attempt
    write_run(sweep, 1, [(a, b, {"gpu": 1.0}), (c, d, {"gpu": GPU_W * (d - c)})],
              {"gpu": SMI})
    settle(sweep / "001")
    books.record()
    assert books.summaries.reads == 4
    assert ledger.run_windows(sweep, 3, books.summaries) == ledger.run_windows(sweep, 3)
    books.stop()


def test_a_gpu_no_run_used_is_not_charged_to_the_sweep(fake_smi, tmp_path):
    """--gpus 0,1 and a run on GPU 0 alone: the sweep's meter added GPU 1's idle 250 W
    over run 000's window to the sweep's total (review). Each GPU now counts over the
    windows of the runs on it."""
    from conftest import UUID1

    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}},
                        {"uuid": UUID1, "name": "NVIDIA H200", "power": {"base": 250.0}}])
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    books = ledger.DeviceLedger(sweep, 1, "nvidia-smi", ["0", "1"]).start()
    a, b = measure_a_window(books)
    write_run(sweep, 0, [(a, b, {"gpu": GPU_W * (b - a)})], {"gpu": SMI}, uuid=UUID0)
    books.stop()
    session = sessions(sweep)[0]
    total = sweep_total.of(sweep)
    assert total.total_j == pytest.approx(GPU_W * (b - a), rel=0.1)  # GPU 0's alone
    assert total.total_j == pytest.approx(session["energy_j"])  # covered by the session
    assert session["uuids"] == sorted([UUID0, UUID1])  # both metered,
    assert session["gpu_pieces"][UUID1] == [] and session["gpu_pieces"][UUID0]  # one used


@pytest.mark.parametrize("figures,sources", [
    ({"gpu": None}, {"gpu": SMI}),  # a summary from before attempts named their GPUs
    ({"cpu": 5.0}, {"cpu": ESTIMATE}),  # a run whose own meter fell back to the estimate
], ids=["gpu-without-uuid", "estimated"])
def test_a_run_that_names_no_gpu_keeps_the_gpu_energy_of_its_window(fake_smi, tmp_path,
                                                                     figures, sources):
    """Each GPU over the windows of the runs on it: a run that recorded no GPU was on
    none, so its window's GPU energy was in no session and yet counted as covered: 0 J
    (review of the change). Its window counts on every GPU, as before."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}}])
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    books = ledger.DeviceLedger(sweep, 1, "nvidia-smi").start()
    a, b = measure_a_window(books)
    parts = {c: GPU_W * (b - a) if j is None else j for c, j in figures.items()}
    write_run(sweep, 0, [(a, b, parts)], sources, uuid=None)
    books.stop()
    total = sweep_total.of(sweep)
    gpu = sessions(sweep)[0]["energy_j"]
    assert gpu == pytest.approx(GPU_W * (b - a), rel=0.1)
    assert total.total_j == pytest.approx(gpu + parts.get("cpu", 0.0))
