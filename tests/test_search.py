"""The search core (issue 25): halving decisions, proposals, the front and its hypervolume.

Fast: no Keras training, only Optuna's samplers on made-up results.
"""

import importlib.util
import json
import math

import pytest

from greenscreen_pipeline.errors import MissingDependency
from greenscreen_pipeline.search import encoding, front, halving, propose, rungfiles
from greenscreen_pipeline.search.halving import GO_ON, STOP, WAIT, RungRecord
from greenscreen_pipeline.space import SweepConfig

NAN = float("nan")


def table(rows, epoch=1):
    return [RungRecord(run, epoch, obj, energy) for run, obj, energy in rows]


# -- the front and its hypervolume ----------------------------------------------------------
def test_the_front_keeps_what_nothing_beats_on_both_axes_and_equal_points_together():
    acc = [0.95, 0.90, 0.88, 0.80, 0.70, 0.85, 0.88, NAN]
    energy = [20, 10, 2, 5, 1, 12, 2, 0.5]
    assert front.pareto_mask(acc, energy).tolist() == [True, True, True, False, True, False,
                                                       True, False]
    # val_loss: lower is better; the same points read the other way round
    assert front.pareto_mask([0.3, 0.25, 0.5, 0.4], [10, 20, 1, 15], maximize=False).tolist() \
        == [True, True, True, False]
    assert front.pareto_mask([], []).tolist() == []
    # an unknown energy counts as the highest: only the best objective stays on the front
    assert front.pareto_mask([0.9, 0.8, 0.7], [NAN, 1, NAN]).tolist() == [True, True, False]


def test_hypervolume_is_the_staircase_area_under_the_reference_point():
    # maximise (0.9, 10), (0.8, 4), (0.5, 1) from the reference (0, 20):
    # energies 1..4 at 0.5, 4..10 at 0.8, 10..20 at 0.9 -> 1.5 + 4.8 + 9 = 15.3
    points = ([0.9, 0.8, 0.5, 0.6], [10, 4, 1, 12])  # (0.6, 12) is dominated
    assert front.hypervolume(*points, reference=(0.0, 20.0)) == pytest.approx(15.3)
    # a reference that cuts the points: only what lies strictly inside counts
    assert front.hypervolume(*points, reference=(0.7, 8.0)) == pytest.approx(0.4)
    # minimise losses 1 and 3 at energies 3 and 1, from (4, 4): energies 1..3 at loss 3,
    # 3..4 at loss 1 -> 2*1 + 1*3 = 5
    assert front.hypervolume([1, 3], [3, 1], reference=(4, 4), maximize=False) \
        == pytest.approx(5.0)
    assert front.hypervolume([NAN], [1.0], reference=(0, 2)) == 0.0
    assert front.hypervolume([], [], reference=(0, 2)) == 0.0


# -- successive halving ---------------------------------------------------------------------
def test_rungs_are_powers_of_eta_below_the_last_epoch():
    assert halving.rungs(9, 3) == [1, 3]
    assert halving.rungs(10, 3) == [1, 3, 9]
    assert halving.rungs(8, 2) == [1, 2, 4]
    assert halving.rungs(1, 3) == []
    with pytest.raises(ValueError, match="halving_eta=1"):
        halving.rungs(9, 1)
    assert [halving.keep_count(n, 3) for n in (1, 2, 3, 4, 6, 7)] == [1, 1, 1, 2, 2, 3]


def test_the_top_third_and_the_rungs_front_go_on_a_cheap_nearly_as_good_run_too():
    rung = table([(0, 0.90, 10), (1, 0.88, 2), (2, 0.95, 20), (3, 0.80, 5), (4, 0.70, 1),
                  (5, 0.85, 12)])
    # top ceil(6/3) = 2 by accuracy: 2 and 0. Run 1 is 2 pt below run 0 for a fifth of its
    # energy: saved by the front, as is run 4, the cheapest. 3 and 5 are dominated.
    assert halving.survivors(rung, eta=3) == {0, 1, 2, 4}


def test_ties_rank_the_cheaper_run_first_and_equal_points_share_the_front():
    rung = table([(0, 0.9, 5), (1, 0.8, 4), (2, 0.8, 3), (3, 0.8, 3)])
    # top 2: run 0, then run 2 (0.8 at 3 J, the lower index of two equal points); run 3
    # equals run 2 on both axes, so both are on the front; run 1 costs more for the same.
    assert halving.survivors(rung, eta=3) == {0, 2, 3}
    rung = table([(0, 0.9, 5), (1, 0.9, 3), (2, 0.8, 10), (3, 0.8, 10)])
    assert halving.survivors(rung, eta=2) == {0, 1}  # 0 by the top half, 1 by both


def test_a_minimised_objective_is_read_the_other_way_round():
    rung = table([(0, 0.30, 10), (1, 0.25, 20), (2, 0.50, 1), (3, 0.40, 15)])
    assert halving.survivors(rung, eta=3, maximize=False) == {0, 1, 2}
    assert halving.survivors(rung, eta=3, maximize=True) == {2, 3}


def test_a_run_without_an_objective_stops_and_a_run_alone_goes_on():
    assert halving.survivors(table([(0, NAN, 1), (1, 0.5, 9)]), eta=3) == {1}
    assert halving.survivors(table([(7, 0.1, 1)]), eta=3) == {7}


def test_a_run_waits_at_its_rung_until_every_peer_reached_it_or_ended():
    records = {r.run: r for r in table([(0, 0.5, 3), (1, 0.9, 2)])}
    assert halving.decide(0, records, ended=set(), group=[0, 1, 2], eta=3) == WAIT
    # run 2 failed before the rung: the table is final, and run 0 is dominated by run 1
    assert halving.decide(0, records, ended={2}, group=[0, 1, 2], eta=3) == STOP
    assert halving.decide(1, records, ended={2}, group=[0, 1, 2], eta=3) == GO_ON
    with pytest.raises(ValueError, match="run 2 has no record"):
        halving.decide(2, records, ended=set(), group=[0, 1, 2], eta=3)


def test_peers_are_the_batch_or_every_batch_so_far():
    assert list(halving.peers(5, 4, 7, "batch")) == [4, 5, 6]  # the last batch is short
    assert list(halving.peers(5, 4, 7, "sweep")) == [0, 1, 2, 3, 4, 5, 6]
    assert list(halving.peers(2, 1, 5, "sweep")) == [0, 1, 2]
    with pytest.raises(ValueError, match="scope='all'"):
        halving.peers(0, 1, 1, "all")


def test_replaying_known_curves_stops_runs_at_their_rungs():
    def curve(points):  # (objective, energy so far) after each of 9 epochs
        return points + [points[-1]] * (9 - len(points))

    curves = {0: curve([(0.5, 1), (0.6, 4), (0.7, 7)]),
              1: curve([(0.6, 2), (0.7, 4), (0.8, 6)]),
              2: curve([(0.4, 3)])}
    # rung 1: run 1 is the top third, run 0 the cheapest, run 2 dominated by both.
    # rung 3: run 1 is better and cheaper than run 0.
    assert halving.replay(curves, batch_size=3, eta=3) == {0: 3, 1: 9, 2: 1}
    # one run per batch, judged within its batch alone: nothing is ever stopped
    assert halving.replay(curves, batch_size=1, eta=3, scope="batch") == {0: 9, 1: 9, 2: 9}
    # judged against the runs before it: run 2 is dominated at rung 1 by runs 0 and 1
    assert halving.replay(curves, batch_size=1, eta=3, scope="sweep") == {0: 9, 1: 9, 2: 1}
    # a run that failed after 2 epochs is in rung 1's table (top 2 of 4: runs 3 and 1; run 3
    # dominates runs 0 and 2), and rung 3 does not wait for it: run 1 is alone there
    curves[3] = [(0.95, 1), (0.96, 2)]
    assert halving.replay(curves, batch_size=4, eta=3) == {0: 1, 1: 9, 2: 1, 3: 2}


def test_rung_records_round_trip_through_shared_storage(tmp_path):
    rungfiles.write_rung(tmp_path / "000", RungRecord(0, 1, 0.75, 12.5))
    rungfiles.write_rung(tmp_path / "002", RungRecord(2, 1, NAN, 3.0))
    on_disk = json.loads(rungfiles.rung_path(tmp_path / "002", 1).read_text())
    assert on_disk == {"run": 2, "epoch": 1, "objective": None, "energy_j": 3.0,
                       "energy_kind": ""}
    got = rungfiles.rung_table(tmp_path, range(3), epoch=1)
    assert sorted(got) == [0, 2] and got[0] == RungRecord(0, 1, 0.75, 12.5)
    assert math.isnan(got[2].objective)
    assert rungfiles.read_rung(tmp_path / "000", 3) is None


def test_a_run_waits_for_its_peers_rung_files_then_decides(tmp_path):
    polls = []

    def sleep(seconds):  # while run 0 waits, run 1 reaches the rung and run 2 fails
        polls.append(seconds)
        if len(polls) == 1:
            rungfiles.write_rung(tmp_path / "001", RungRecord(1, 1, 0.9, 2.0))

    failed = lambda run: run == 2 and len(polls) >= 2  # noqa: E731
    got = rungfiles.await_decision(tmp_path, RungRecord(0, 1, 0.5, 3.0), range(3), failed,
                                   eta=3, poll_s=0.5, sleep=sleep)
    assert got == STOP and polls == [0.5, 0.5]  # dominated by run 1, decided on poll 3
    assert rungfiles.read_rung(tmp_path / "000", 1) == RungRecord(0, 1, 0.5, 3.0)
    with pytest.raises(TimeoutError, match=r"runs \[2\]"):
        rungfiles.await_decision(tmp_path, RungRecord(0, 1, 0.5, 3.0), range(3),
                                 lambda run: False, eta=3, timeout_s=1, sleep=lambda s: None)


def test_a_released_run_parks_at_an_undecided_rung_and_resumes_once_it_is_decided(tmp_path):
    """issue 37 item 3: with `release`, run 0 resumed at its rung while run 1 has not
    reached it is parked again (RunParked names run 1) without waiting; once run 1 has
    its record, the executor's check says decided and the resumed run reads the decision."""
    from greenscreen_pipeline.search.rung_callback import RungCallback, RunParked
    from greenscreen_pipeline.search.rungfiles import parked_is_decided

    rungfiles.write_rung(tmp_path / "000", RungRecord(0, 1, 0.9, 2.0))
    callback = RungCallback(tmp_path, 0, range(2), epochs=3, eta=3,
                            objective_name="val_accuracy", maximize=True, release=True)
    with pytest.raises(RunParked, match=r"parked at rung 1 .*waiting for run\(s\) 001") as got:
        callback.check_resumed(1)
    assert (got.value.rung, got.value.peers) == (1, [0, 1])
    status = {"status": "parked", "rung": 1, "peers": [0, 1]}
    assert not parked_is_decided(tmp_path, 0, status, eta=3, maximize=True)
    rungfiles.write_rung(tmp_path / "001", RungRecord(1, 1, 0.5, 3.0))  # worse and dearer
    assert parked_is_decided(tmp_path, 0, status, eta=3, maximize=True)
    again = RungCallback(tmp_path, 0, range(2), epochs=3, eta=3,
                         objective_name="val_accuracy", maximize=True, release=True)
    again.check_resumed(1)  # decided: go on, no exception
    assert again.parked_at is None and again.stopped_at is None
    # A parked run whose record is gone resumes and finds out (its process rewrites it).
    assert parked_is_decided(tmp_path, 0, {**status, "rung": 2}, eta=3, maximize=True)


def test_a_peer_has_ended_by_its_status_and_an_unreadable_folder_has_not(tmp_path):
    from greenscreen_pipeline.search.rungfiles import has_ended

    for run, text in enumerate(['{"status": "failed"}', '{"status": "pending"}', "{half a"]):
        (tmp_path / f"{run:03d}").mkdir()
        (tmp_path / f"{run:03d}" / "status.json").write_text(text)
    assert [has_ended(tmp_path, run) for run in range(4)] == [True, False, False, False]


def test_parked_runs_resume_when_decided_and_are_left_parked_when_no_one_can_decide(tmp_path):
    """executors/parked.py: a parked run whose peer never started (the budget was spent)
    is stuck, not waited for; while a live process holds the peer's claim it is not; an
    unreadable rung file counts as decided (the run resumes and its process says why)."""
    from greenscreen_pipeline import space
    from greenscreen_pipeline.executors import claims
    from greenscreen_pipeline.executors.parked import ParkedRuns, releases

    path = tmp_path / "config.yaml"
    path.write_text("settings: {runs: 4, epochs: 3, early_stop: halving}\n"
                    "configuration: {lr: {values: [0.1, 0.01]}}\n")
    config = space.load(path)
    assert releases(config)
    path.write_text(path.read_text().replace("halving}", "halving, search: pareto}"))
    assert not releases(space.load(path))  # one batch at a time: nothing to give a worker
    sweep = tmp_path / "sweep"
    rungfiles.write_rung(sweep / "000", RungRecord(0, 1, 0.9, 2.0))
    parked = ParkedRuns(config, sweep)
    parked.add(0, {"status": "parked", "rung": 1, "peers": [0, 1], "reason": "parked"})
    assert parked.take_decided() is None and parked.stuck() == {0: [1]}
    assert claims.claim(sweep, 1)  # a live process (this one) trains run 001
    assert parked.stuck() == {}
    claims.release(sweep, 1)
    rungfiles.rung_path(sweep / "000", 1).write_text("{not json")
    assert parked.take_decided() == 0 and not parked


# -- proposals ------------------------------------------------------------------------------
SPACE = {"net": ["mlp", "cnn"], "width": [16, 64, 256], "lr": [0.1, 0.001, 0.01],
         "flag": [True, False], "own": ["a", "b", "c"], "fixed": [7]}
SAMPLERS = ["tpe", "nsga2"]  # the GP sampler has its own, smaller test: an ask takes seconds


def score(config):
    acc = 0.5 + {16: 0.0, 64: 0.1, 256: 0.2}[config["width"]] + (0.05 if config["flag"] else 0)
    return acc, {16: 1.0, 64: 2.0, 256: 5.0}[config["width"]] * (3 if config["net"] == "cnn"
                                                                 else 1)


def sweep(sampler, batches, seed=5, size=4, n_startup=4, state=lambda i: "done"):
    """The recorded results of a sweep proposed batch by batch, and the batches."""
    config, results, proposed = SweepConfig("config.yaml", {"seed": seed}, SPACE), [], []
    for b in range(batches):
        batch = propose.propose(SPACE, results, range(b * size, (b + 1) * size), seed=seed,
                                batch=b, random_run=config.run, n_startup=n_startup,
                                sampler=sampler)
        proposed.append(batch)
        for i, c in batch.items():
            results.append(propose.Result(i, c, state(i), *score(c)))
    return results, proposed


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_same_seed_and_results_propose_the_same_batch(sampler):
    results, proposed = sweep(sampler, batches=3, state=lambda i: "stopped" if i % 3 else "done")
    again = propose.propose(SPACE, results[:8], range(8, 12), seed=5, batch=2,
                            random_run=SweepConfig("x", {"seed": 5}, SPACE).run, n_startup=4,
                            sampler=sampler)
    assert again == proposed[2]
    assert sweep(sampler, batches=3, state=lambda i: "stopped" if i % 3 else "done")[1] \
        == proposed


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the GP sampler needs torch")
def test_the_gp_sampler_proposes_the_same_batch_from_the_same_results():
    results, _ = sweep("tpe", batches=2)
    asked = [propose.propose(SPACE, results, range(8, 9), seed=5, batch=2, n_startup=4,
                             random_run=SweepConfig("x", {"seed": 5}, SPACE).run, sampler="gp")
             for _ in range(2)]
    assert asked[0] == asked[1] and sorted(asked[0]) == [8]


def test_without_torch_the_gp_sampler_is_a_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(MissingDependency, match="sampler gp needs torch"):
        propose.make_sampler("gp", 1, 4)


def test_the_first_runs_are_the_random_start_and_run_0_the_baseline():
    assert [propose.default_startup(n, 4) for n in (8, 20, 100)] == [4, 7, 10]
    config = SweepConfig("config.yaml", {"seed": 5}, SPACE)
    _, proposed = sweep("tpe", batches=2, n_startup=6)
    assert proposed[0] == {i: config.run(i) for i in range(4)}
    assert proposed[0][0] == {dim: values[0] for dim, values in SPACE.items()}
    assert proposed[1][4] == config.run(4) and proposed[1][5] == config.run(5)
    assert proposed[1][6] != config.run(6) or proposed[1][7] != config.run(7)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_proposals_stay_in_the_space_and_repeat_no_recorded_configuration(sampler):
    results, proposed = sweep(sampler, batches=5, n_startup=4)
    dims = encoding.dimensions(SPACE)
    for batch in proposed:
        for c in batch.values():
            assert list(c) == list(SPACE)
            assert all(any(type(v) is type(c[d]) and v == c[d] for v in SPACE[d]) for d in SPACE)
    keys = [encoding.key(r.config, dims) for r in results if r.run >= 4]
    earlier = {encoding.key(r.config, dims) for r in results if r.run < 4}
    assert len(set(keys)) == len(keys) and not set(keys) & earlier


def test_a_space_with_nothing_left_to_try_repeats_rather_than_fails():
    space = {"a": [1, 2]}
    results = [propose.Result(i, {"a": v}, "done", 0.5, 1.0) for i, v in enumerate([1, 2])]
    got = propose.propose(space, results, range(2, 5), seed=1, batch=1, n_startup=2,
                          random_run=SweepConfig("x", {"seed": 1}, space).run)
    assert sorted(got) == [2, 3, 4] and all(c["a"] in (1, 2) for c in got.values())


def test_results_are_told_by_state_stopped_runs_as_pruned():
    dims = encoding.dimensions(SPACE)
    config = SweepConfig("x", {"seed": 1}, SPACE)
    results = [propose.Result(0, config.run(0), "done", 0.9, 3.0),
               propose.Result(1, config.run(1), "stopped", 0.5, 0.4),
               propose.Result(2, config.run(2), "failed"),
               propose.Result(3, config.run(3), "done", NAN, 2.0),  # no objective: failed
               propose.Result(4, {**config.run(4), "width": 32}, "done", 0.9, 1.0)]  # edited
    sampler = propose.make_sampler("tpe", 1, 4)
    study = propose.build_study(results, dims, sampler)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED", "FAIL", "FAIL"]
    assert study.trials[0].values == [0.9, 3.0]
    partial = propose.build_study(results, dims, propose.make_sampler("tpe", 1, 4),
                                  stopped_as="partial")
    assert partial.trials[1].state.name == "COMPLETE" and partial.trials[1].values == [0.5, 0.4]
    with pytest.raises(ValueError, match="state='running'"):
        propose.build_study([propose.Result(0, config.run(0), "running")], dims, sampler)


def test_nsga2_sorts_the_recorded_runs_into_generations_of_one_batch():
    results, _ = sweep("tpe", batches=2)
    sampler = propose.make_sampler("nsga2", 1, 4)
    study = propose.build_study(results, encoding.dimensions(SPACE), sampler)
    generations = [sampler.get_trial_generation(study, t) for t in study.trials]
    assert generations == [0, 0, 0, 0, 1, 1, 1, 1]  # so the next batch is bred, not random


def test_a_minimised_objective_and_an_unknown_sampler():
    results, _ = sweep("tpe", batches=1)
    got = propose.propose(SPACE, results, range(4, 8), seed=5, batch=1, n_startup=4,
                          random_run=SweepConfig("x", {"seed": 5}, SPACE).run, maximize=False)
    assert len(got) == 4
    with pytest.raises(ValueError, match="sampler='cmaes'"):
        propose.make_sampler("cmaes", 1, 4)


def test_numbers_are_ordinal_and_other_values_categorical_by_position():
    dims = {d.name: d for d in encoding.dimensions(SPACE)}
    assert "fixed" not in dims  # one value: never sampled
    assert dims["lr"].ordinal and dims["lr"].values == (0.001, 0.01, 0.1)
    assert not dims["net"].ordinal and not dims["flag"].ordinal
    mixed = encoding.dimensions({"x": [1, True, "1", 1]})[0]
    assert mixed.values == (1, True, "1") and mixed.position(True) == 1
