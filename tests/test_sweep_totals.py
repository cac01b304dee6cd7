"""The sweep's total (sweep_total.py): the one rule behind the console's "total",
analysis.json's sweep energy, the report's Totals and the budget's "spent". Each GPU
counted once where the sweep's own meter (sweep_energy.json) covered an attempt, the
runs' own figures for everything else, so no energy already spent is dropped and an
estimate in the total is named. Run folders written here; the sweep's meter is the real
ledger over the fake nvidia-smi (and the fake powercap tree)."""

import contextlib
import io
import json
import math
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import UUID0, UUID1

from greenscreen_pipeline import analysis, budget, ledger, records, sweep_total
from greenscreen_pipeline.executors.attempt import RunReport
from greenscreen_pipeline.executors.progress import Progress
from greenscreen_pipeline.report.inputs import ReportInputs

GPU_W = 150.0
SMI = "measured:nvidia-smi"
RAPL = "measured:rapl;attributed:cpu-time-share"
ESTIMATE = "estimated:cpu-time"


def write_run(sweep: Path, index: int, attempts: list, sources: dict, uuid: str | None = UUID0,
              status: str = "done") -> None:
    """Run `index`'s folder as SMICallback and the run process leave it: `attempts` are
    (t_start, t_end, {component: joules}), `sources` each component's provenance."""
    folder = sweep / f"{index:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "parameters.yaml").write_text(yaml.safe_dump(
        {"batch_size": 16 * (index + 1), "model": "ffnn", "test_accuracy": 0.9}))
    (folder / "status.json").write_text(json.dumps({"status": status, "reason": None}))
    per = {c: math.fsum(parts.get(c, 0.0) for _, _, parts in attempts) for c in sources}
    total = math.fsum(per.values())
    duration = math.fsum(b - a for a, b, _ in attempts)
    (folder / "summary.json").write_text(json.dumps({
        "energy_j": total, "power_avg_w": total / duration, "duration_s": duration,
        "source": " + ".join(dict.fromkeys(sources.values())),
        "t_start": attempts[0][0], "t_end": attempts[-1][1], "covers": list(sources),
        "components": {c: {"energy_j": per[c], "source": s} for c, s in sources.items()},
        "devices": [{"index": 0, "uuid": uuid, "name": "NVIDIA H200", "component": "gpu",
                     "energy_j": per["gpu"]}] if uuid and "gpu" in sources else [],
        "attempts": [{"t_start": a, "t_end": b, "duration_s": b - a,
                      "energy_j": math.fsum(parts.values()), "components": parts}
                     for a, b, parts in attempts]}))
    (folder / "logs.csv").write_text("epoch,loss,accuracy,val_accuracy,power_w,energy_j\n"
                                     f"0,0.5,0.9,0.9,{total / duration},{total}\n")


def sessions(sweep: Path) -> list[dict]:
    return json.loads((sweep / ledger.FILE).read_text())["sessions"]


def measure_a_window(books: ledger.DeviceLedger, seconds: float = 0.3) -> tuple[float, float]:
    """A window the sweep's meter saw (as a run's attempt would be)."""
    assert books.active and books.meter.wait_for_sample(10)
    a = time.time()
    time.sleep(seconds)
    return a, time.time()


def report_line(sweep: Path, index: int, note: str = "done", runs: int = 1, books=None,
                budget_line=lambda now: None) -> list[str]:
    """What the console prints for run `index`."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        Progress(runs, books, budget_line).report(
            sweep, RunReport(index, {"status": "done", "test_accuracy": 0.9}, note,
                             1.0 if note == "done" else None))
    return out.getvalue().splitlines()


def totals_text(sweep: Path) -> str:
    """The report's Totals table (page 1), its rows as text (analysis.json written)."""
    from greenscreen_pipeline.report import totals

    return " ".join(" ".join(row) for row in totals.rows(ReportInputs.read(sweep)))


def test_a_session_the_sweep_was_killed_in_keeps_its_energy(fake_smi, tmp_path):
    """SIGKILL: the killed invocation never recorded its session, so run 000's first
    attempt (434.6 J) is in no session; the next invocation's meter covers the second.
    The total was the recorded session alone (1781.5 J of 2216.0 J spent)."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}}])
    sweep, killed = tmp_path / "sweep", 434.6
    t0 = time.time() - 100
    write_run(sweep, 0, [(t0, t0 + 3, {"gpu": killed})], {"gpu": SMI})
    books = ledger.DeviceLedger(sweep, 1, "nvidia-smi").start()
    a, b = measure_a_window(books)
    write_run(sweep, 0, [(t0, t0 + 3, {"gpu": killed}), (a, b, {"gpu": GPU_W * (b - a)})],
              {"gpu": SMI})
    line = report_line(sweep, 0, books=books)[0]
    covered = sessions(sweep)[0]["energy_j"]
    assert covered > 0
    assert f"total {math.fsum([covered, killed]):.1f} J (measured)" in line, line
    books.stop()
    covered = sessions(sweep)[0]["energy_j"]
    record = analysis.analyze(sweep)["sweep_energy"]
    assert record["energy_j"] == pytest.approx(covered + killed)
    assert record["provenance"] == "measured"
    assert [(p["kind"], p["energy_j"]) for p in record["parts"]] == [
        (sweep_total.OWN, pytest.approx(killed)), (sweep_total.METER, covered)]
    text = totals_text(sweep)
    unit = ReportInputs.read(sweep).unit
    assert f"sweep {unit.text(covered + killed)} (measured: each GPU measured once" in text
    assert (f"{unit.text(killed)} the runs' own figures for attempts that meter did not "
            "cover") in text


def test_a_run_in_flight_when_a_killed_sweep_last_recorded_keeps_every_second(fake_smi,
                                                                              tmp_path):
    """The sweep records its session while run 000 trains, whose summary was last written
    at its last epoch's end, before the record. Then the sweep is killed (no later
    record) and the run, stopped by its parent's death, writes its summary once more. The
    seconds from the run's earlier summary to the record lay in the session's span but
    not in what its meter measured: no figure counted them (review)."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}}])
    sweep = tmp_path / "sweep"
    books = ledger.DeviceLedger(sweep, 1, "nvidia-smi").start()
    a, written = measure_a_window(books)
    write_run(sweep, 0, [(a, written, {"gpu": GPU_W * (written - a)})], {"gpu": SMI},
              status="running")
    time.sleep(0.5)
    books.record()
    session = sessions(sweep)[0]
    assert session["pieces"] == [[pytest.approx(a), pytest.approx(written)]]
    assert session["t_end"] - written >= 0.5
    books.meter.stop()  # SIGKILL: the session stays as last recorded
    books.lock.release()
    end = session["t_end"] + 0.5
    write_run(sweep, 0, [(a, end, {"gpu": GPU_W * (end - a)})], {"gpu": SMI},
              status="interrupted")
    total = sweep_total.of(sweep)
    after_summary = GPU_W * (end - written)  # the run's own figure for what no meter saw
    assert total.parts[(sweep_total.OWN, "gpu", SMI)] == pytest.approx(after_summary)
    assert total.total_j == pytest.approx(session["energy_j"] + after_summary)


def test_a_session_s_pieces_count_each_second_once_in_any_order(tmp_path):
    """The ledger writes a session's pieces in time order; an edited or merged file may
    not: the total was read as if they were, and counted an attempt twice."""
    sweep = tmp_path / "sweep"
    write_run(sweep, 0, [(0.0, 5.0, {"gpu": 500.0})], {"gpu": SMI})
    totals = []
    for pieces in ([[0.0, 5.0], [10.0, 20.0]], [[10.0, 20.0], [0.0, 5.0]],
                   [[10.0, 20.0], [0.0, 3.0], [2.0, 5.0]]):
        (sweep / ledger.FILE).write_text(json.dumps({"sessions": [
            {"t_start": 0.0, "t_end": 20.0, "energy_j": 400.0, "union_s": 15.0,
             "source": SMI, "uuids": [UUID0], "pieces": pieces}]}))
        totals.append(sweep_total.of(sweep).total_j)
    assert totals == [400.0] * 3


def test_runs_estimated_before_the_meter_ran_stay_in_the_total(fake_smi, tmp_path):
    """A first invocation without a GPU estimated runs 000-001; resumed with one, the
    sweep's meter covers run 003 only. The estimated runs were dropped (console "total
    0.0 J" on the kept run 000), and the total never said it was in part an estimate."""
    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}}])
    sweep, t0 = tmp_path / "sweep", time.time() - 100
    write_run(sweep, 0, [(t0, t0 + 3, {"cpu": 58.4})], {"cpu": ESTIMATE}, uuid=None)
    write_run(sweep, 1, [(t0 + 4, t0 + 9, {"cpu": 126.5})], {"cpu": ESTIMATE}, uuid=None)
    books = ledger.DeviceLedger(sweep, 5, "nvidia-smi").start()
    line = report_line(sweep, 0, "kept", runs=5, books=books)[0]
    assert "run 000 kept" in line and "total 184.9 J (estimated)" in line, line
    a, b = measure_a_window(books)
    write_run(sweep, 3, [(a, b, {"gpu": GPU_W * (b - a)})], {"gpu": SMI})
    line = report_line(sweep, 3, runs=5, books=books)[0]
    covered = sessions(sweep)[0]["energy_j"]
    assert f"total {math.fsum([covered, 184.9]):.1f} J (measured + estimated)" in line, line
    books.stop()
    covered = sessions(sweep)[0]["energy_j"]
    result = analysis.analyze(sweep)
    record = result["sweep_energy"]
    assert record["energy_j"] == pytest.approx(covered + 184.9)
    assert (record["measured_j"], record["estimated_j"]) == (covered, pytest.approx(184.9))
    assert record["provenance"] == "measured + estimated"
    assert "in part an estimate" in analysis.summary_text(result)
    spent = budget.spent(sweep)
    assert (spent.total_j, spent.provenance) == (record["energy_j"], record["provenance"])
    text = totals_text(sweep)
    unit = ReportInputs.read(sweep).unit
    assert f"sweep {unit.text(covered + 184.9)} (measured + estimated, in part an estimate" \
        in text
    assert "estimated from CPU time and a nominal power: not a measurement" in text


def test_the_sweep_s_meter_measures_the_gpus_only_and_the_budget_agrees(fake_smi, tmp_path,
                                                                        monkeypatch):
    """energy_source auto on a node with RAPL: the sweep's meter took the whole CPU
    packages and DRAM too (other processes' energy), and the console's "total" disagreed
    with the "spent ... of budget" line printed under it."""
    import powercap

    fake_smi.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": GPU_W}}])
    (tmp_path / "rapl").mkdir()
    sweep = tmp_path / "sweep"
    with powercap.running(tmp_path / "rapl", powercap.zones(time.time()), "flat") as folder:
        monkeypatch.setenv("GREENSCREEN_POWERCAP_ROOT", str(folder))
        books = ledger.DeviceLedger(sweep, 2, "auto").start()
        try:
            assert books.meter.source == SMI
            a, b = measure_a_window(books)
            write_run(sweep, 0, [(a, b, {"gpu": GPU_W * (b - a), "cpu": 10.0, "dram": 2.0})],
                      {"gpu": SMI, "cpu": RAPL, "dram": RAPL})
            settings = {"runs": 2, "budget": 1e6}
            lines = report_line(sweep, 0, runs=2, books=books,
                                budget_line=lambda now: budget.line(settings, sweep, now))
        finally:
            books.stop()
    session = sessions(sweep)[0]
    assert session["source"] == SMI and session["devices"] == ["NVIDIA H200"]
    assert session["uuids"] == [UUID0]
    total = float(re.search(r"total ([0-9.]+) J \(measured\)", lines[0]).group(1))
    spent = float(re.search(r"spent ([0-9.]+) J of budget", lines[1]).group(1))
    assert total == spent, lines
    record = analysis.analyze(sweep)["sweep_energy"]
    assert record["energy_j"] == pytest.approx(session["energy_j"] + 12.0)
    assert {(p["kind"], p["component"]) for p in record["parts"]} == {
        (sweep_total.METER, "gpu"), (sweep_total.BESIDE, "cpu"), (sweep_total.BESIDE, "dram")}


def test_a_session_recorded_with_rapl_is_not_used(tmp_path):
    """A sweep_energy.json written while the meter took RAPL too: its figure holds whole
    packages, so the runs' own figures count instead."""
    write_run(tmp_path, 0, [(100.0, 110.0, {"gpu": 1000.0, "cpu": 50.0})],
              {"gpu": SMI, "cpu": RAPL})
    (tmp_path / ledger.FILE).write_text(json.dumps({"sessions": [
        {"t_start": 90.0, "t_end": 120.0, "energy_j": 1600.0, "union_s": 10.0,
         "source": f"{SMI} + measured:rapl"}]}))
    now = sweep_total.of(tmp_path)
    assert now.total_j == 1050.0 and now.sessions == 0


def sharing_sweep(folder: Path) -> Path:
    """Runs 000 and 001 shared GPU 0 for 5 s, each charged its share; the meter saw the
    union [100, 115] once: 1800 J."""
    write_run(folder, 0, [(100.0, 110.0, {"gpu": 1125.0, "cpu": 5.0})],
              {"gpu": f"{SMI};attributed:sm-share", "cpu": ESTIMATE})
    write_run(folder, 1, [(105.0, 115.0, {"gpu": 1125.0})],
              {"gpu": f"{SMI};attributed:sm-share"})
    (folder / ledger.FILE).write_text(json.dumps({"sessions": [
        {"t_start": 90.0, "t_end": 120.0, "energy_j": 1800.0, "union_s": 15.0,
         "source": SMI, "uuids": [UUID0]}]}))
    return folder


def test_runs_sharing_a_gpu_count_each_joule_once(tmp_path):
    now = sweep_total.of(sharing_sweep(tmp_path))
    assert now.total_j == 1805.0 and now.runs_own_j == 2255.0
    assert (now.measured_j, now.estimated_j) == (1800.0, 5.0)


def test_an_attempt_outside_the_session_or_on_another_gpu_counts_at_its_own_figure(tmp_path):
    sweep = sharing_sweep(tmp_path)
    write_run(sweep, 2, [(100.0, 110.0, {"gpu": 700.0})], {"gpu": SMI}, uuid=UUID1)
    # in flight when a killed sweep last recorded: 6 of its 10 s after the session's end
    write_run(sweep, 3, [(116.0, 126.0, {"gpu": 500.0})], {"gpu": SMI})
    now = sweep_total.of(sweep)
    assert now.parts[(sweep_total.OWN, "gpu", SMI)] == pytest.approx(700.0 + 0.6 * 500.0)
    assert now.total_j == pytest.approx(1805.0 + 700.0 + 300.0)


def test_an_earlier_attempt_s_estimate_is_never_called_measured(tmp_path):
    """Attempt 1 estimated the CPU (no GPU then), attempt 2 measured the GPU: the summary's
    components name the GPU's source only. The attempt's own source says what it was;
    without one, a CPU figure of unknown source counts as an estimate."""
    write_run(tmp_path, 0, [(100.0, 110.0, {"cpu": 98.0}), (120.0, 130.0, {"gpu": 900.0})],
              {"gpu": SMI})
    now = sweep_total.of(tmp_path)
    assert (now.measured_j, now.estimated_j) == (900.0, 98.0)
    assert now.provenance == "measured + estimated"
    summary = json.loads((tmp_path / "000" / "summary.json").read_text())
    summary["attempts"][0]["source"] = ESTIMATE
    (tmp_path / "000" / "summary.json").write_text(json.dumps(summary))
    assert sweep_total.of(tmp_path).parts[(sweep_total.OWN, "cpu", ESTIMATE)] == 98.0


def settle(folder: Path) -> None:
    """Dates a run folder's files a minute back, as a run that ended a minute ago left
    them (`kept.settled`: a file written in the last two seconds is read again)."""
    then = time.time_ns() - 60 * 10**9
    for path in folder.iterdir():
        os.utime(path, ns=(then, then))


def test_the_console_s_total_reads_only_the_summaries_that_changed(tmp_path):
    """Each progress line read every run's summary.json: n^2/2 reads over a sweep of n
    runs, seconds per line at thousands of runs. The kept total reads the changed runs'
    only, and gives `of`'s figures to the bit (value, provenance and parts) each time."""
    sweep = sharing_sweep(tmp_path / "sweep")
    write_run(sweep, 2, [(100.0, 110.0, {"gpu": 700.0, "cpu": 9.5, "dram": 1.5})],
              {"gpu": SMI, "cpu": RAPL, "dram": RAPL}, uuid=UUID1)
    write_run(sweep, 3, [(116.0, 126.0, {"cpu": 60.0})], {"cpu": ESTIMATE}, uuid=None)
    for i in range(4):
        settle(sweep / f"{i:03d}")
    totals = sweep_total.Totals()

    def agrees() -> dict:
        record = totals.of(sweep).to_json()
        assert record == sweep_total.of(sweep).to_json()
        return record

    first = agrees()
    assert totals.reads == 4 and first["provenance"] == "measured + estimated"
    assert agrees() == first and totals.reads == 4  # nothing changed: nothing read
    # run 003 resumed (an attempt added) on the GPU; run 004 ended
    write_run(sweep, 3, [(116.0, 126.0, {"cpu": 60.0}), (130.0, 140.0, {"gpu": 400.0})],
              {"cpu": ESTIMATE, "gpu": SMI})
    write_run(sweep, 4, [(141.0, 150.0, {"gpu": 300.0})], {"gpu": SMI})
    settle(sweep / "003")
    settle(sweep / "004")
    second = agrees()
    assert totals.reads == 6 and second["energy_j"] == pytest.approx(first["energy_j"] + 700.0)
    # the sweep's meter recorded a session over runs 003 and 004: no summary read again
    books = json.loads((sweep / ledger.FILE).read_text())
    books["sessions"].append({"t_start": 128.0, "t_end": 160.0, "energy_j": 650.0,
                              "union_s": 19.0, "source": SMI, "uuids": [UUID0]})
    (sweep / ledger.FILE).write_text(json.dumps(books))
    third = agrees()
    assert totals.reads == 6 and third["sessions"] == 2
    assert third["energy_j"] == pytest.approx(second["energy_j"] - 700.0 + 650.0)


def test_a_summary_just_written_is_read_again_until_it_settles(tmp_path):
    """A file's times tick coarsely on some file systems (FAT, some NFS servers, older
    kernels): a summary rewritten with the same size in the same tick would look
    unchanged. So one written in the last seconds is read again at each line, and kept
    once it is older."""
    write_run(tmp_path, 0, [(100.0, 110.0, {"gpu": 1000.0})], {"gpu": SMI})
    totals = sweep_total.Totals()
    for reads in (1, 2):  # just written: read each time
        assert totals.of(tmp_path).total_j == 1000.0 and totals.reads == reads
    settle(tmp_path / "000")
    for _ in range(2):  # settled: read once more (its times changed), then kept
        assert totals.of(tmp_path).total_j == 1000.0 and totals.reads == 3


def test_the_progress_line_reads_each_finished_run_once(tmp_path):
    """The console's line after each run: its total is `of`'s, from one read per run."""
    sweep, progress = tmp_path / "sweep", Progress(4)
    for i in range(4):
        write_run(sweep, i, [(100.0 + 20 * i, 110.0 + 20 * i, {"gpu": 100.0 + i, "cpu": 5.0})],
                  {"gpu": SMI, "cpu": ESTIMATE})
        settle(sweep / f"{i:03d}")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            progress.report(sweep, RunReport(i, {"status": "done", "test_accuracy": 0.9},
                                             "done", 1.0))
        now = sweep_total.of(sweep)
        assert f"total {now.total_j:.1f} J ({now.provenance})" in out.getvalue()
        assert (progress.total, progress.spent) == (now.total_j, now.provenance)
        assert progress.totals.reads == i + 1


def test_an_attempt_with_one_unknown_component_keeps_the_others(tmp_path):
    """The GPU measured 1500 J and the CPU's RAPL share could not be read: the attempt's
    total is NaN, and the sweep counted none of it ("0.0 J, no energy figure yet")."""
    t0 = time.time() - 1000
    write_run(tmp_path, 0, [(t0, t0 + 10, {"gpu": 1500.0, "cpu": 200.0})],
              {"gpu": SMI, "cpu": RAPL})
    path = tmp_path / "000" / "summary.json"
    doc = json.loads(path.read_text())
    doc["attempts"][0]["components"]["cpu"] = None
    doc["attempts"][0]["energy_j"] = doc["energy_j"] = doc["components"]["cpu"]["energy_j"] = None
    path.write_text(json.dumps(doc))
    total = sweep_total.of(tmp_path)
    assert total.total_j == 1500.0 and total.provenance == "measured"


def test_a_component_measured_in_one_attempt_and_estimated_in_another_is_not_measured(tmp_path):
    """RAPL on the first node, a CPU-time estimate after the resume elsewhere: the CPU's
    700 J was ranked among "the CPU's measured figures only"."""
    t0 = time.time() - 1000
    write_run(tmp_path, 0, [(t0, t0 + 10, {"gpu": 1500.0, "cpu": 300.0}),
                            (t0 + 100, t0 + 110, {"gpu": 1500.0, "cpu": 400.0})],
              {"gpu": SMI, "cpu": f"{RAPL} + {ESTIMATE}"})
    summary = records.RunSummary.from_json(json.loads((tmp_path / "000" / "summary.json")
                                                      .read_text()))
    assert not summary.components["cpu"].measured and summary.components["gpu"].measured
    assert math.isnan(summary.component_energy_j("cpu"))


@pytest.mark.parametrize("case", ["counted twice", "dropped"])
def test_each_attempt_is_judged_by_the_gpus_it_measured(tmp_path, case):
    """A run's attempts were all judged by its last attempt's GPUs. Counted twice: attempt
    1 on GPU 0, metered by a session there, then resumed on GPU 1 (no session): attempt 1
    counted at its own figure too. Dropped: attempt 1 on GPU 1 beside a session metering
    GPU 0 (another --gpus), then resumed on GPU 0: attempt 1 taken as covered by GPU 0's
    meter, and its 2500 J lost."""
    t0 = time.time() - 1000
    first, last = (UUID0, UUID1) if case == "counted twice" else (UUID1, UUID0)
    write_run(tmp_path, 0, [(t0, t0 + 10, {"gpu": 2500.0}), (t0 + 100, t0 + 110, {"gpu": 800.0})],
              {"gpu": SMI}, uuid=last)
    path = tmp_path / "000" / "summary.json"
    doc = json.loads(path.read_text())
    doc["attempts"][0]["gpus"], doc["attempts"][1]["gpus"] = [first], [last]
    path.write_text(json.dumps(doc))
    (tmp_path / ledger.FILE).write_text(json.dumps({"sessions": [
        {"t_start": t0 - 1, "t_end": t0 + 11, "energy_j": 300.0, "union_s": 10, "source": SMI,
         "pieces": [[t0, t0 + 10]], "uuids": [UUID0], "runs": {}}]}))
    total = sweep_total.of(tmp_path).total_j
    assert total == pytest.approx(300.0 + 800.0 if case == "counted twice"
                                  else 300.0 + 2500.0 + 800.0)


def test_folders_above_settings_runs_keep_their_energy_in_every_total(tmp_path):
    """A sweep of 4 runs run again with `runs: 2`: runs 002 and 003 spent their energy all
    the same. The console's total, analysis.json and the budget counted runs 0..1 only
    (67 J of 135 J), so a budget already spent let new runs start."""
    t0 = time.time() - 1000
    for i in range(4):
        write_run(tmp_path, i, [(t0 + 20 * i, t0 + 20 * i + 10, {"cpu": 30.0 + i})],
                  {"cpu": ESTIMATE}, uuid=None)
    (tmp_path / "sweep.json").write_text(json.dumps({"settings": {"runs": 2}}))
    whole = 30.0 + 31.0 + 32.0 + 33.0
    assert sweep_total.of(tmp_path).total_j == whole
    assert budget.spent(tmp_path).total_j == whole
    settings = {"runs": 2, "budget": 100.0}
    assert not budget.allows_next(settings, tmp_path)  # 126 J of 100 J spent
    with contextlib.redirect_stdout(io.StringIO()) as out:
        Progress(2).report(tmp_path, RunReport(1, {"status": "done"}, "done", 1.0))
    assert f"total {whole:.1f} J (estimated)" in out.getvalue()


@pytest.mark.parametrize("source", ["", "unknown", "none", "modelled:tdp"])
def test_energy_of_no_recorded_provenance_is_counted_and_never_called_measured(tmp_path,
                                                                               source):
    """A summary.json without `source`, or a PowerSource of your own that names none
    ("unknown"): the console and page 1 said "290.6 J (measured: ...)"."""
    assert sweep_total.kind_of(source) == sweep_total.UNRECORDED
    assert sweep_total.kind_of(SMI) == "measured" and sweep_total.kind_of(ESTIMATE) == \
        "estimated"
    sweep = tmp_path / "sweep"
    write_run(sweep, 0, [(1000.0, 1010.0, {"gpu": 100.0})], {"gpu": SMI})
    write_run(sweep, 1, [(1020.0, 1030.0, {"gpu": 50.0})], {"gpu": source}, uuid=None)
    total = sweep_total.of(sweep)
    assert total.total_j == pytest.approx(150.0) and total.measured_j == pytest.approx(100.0)
    assert total.unrecorded_j == pytest.approx(50.0)
    assert total.provenance == "measured + provenance not recorded"
    only = tmp_path / "only"
    write_run(only, 0, [(1000.0, 1010.0, {"gpu": 50.0})], {"gpu": source}, uuid=None)
    assert sweep_total.of(only).provenance == "provenance not recorded"
    assert "measured" not in sweep_total.of(only).provenance
