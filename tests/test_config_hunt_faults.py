"""config.yaml faults a hunt found that passed `check` (or broke it with a traceback) and
then failed every run: numbers beyond a float's range, seeds numpy refuses, keys that
are not text, an objective Keras cannot compile or a misspelt one blamed on its mode,
words without a "did you mean", and a settings section that is not a mapping. Each is
one ConfigError naming the key, what was given and what is allowed."""

import subprocess
import sys

import pytest

from greenscreen_pipeline import budget, cli, objective, ranges, space, yamlload

HUGE = "9" * 400
FLOAT_RANGE = "allowed: a number within a float's range"


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def refused(tmp_path, text: str) -> str:
    """The message of the one ConfigError `space.load` raises for `text`."""
    path = write(tmp_path, text)
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    return message


LR = "configuration: {lr: {values: [0.1]}}\n"


# -- 1. integers beyond a float's range: an OverflowError traceback before ------------------

@pytest.mark.parametrize("text, where", [
    (f"configuration: {{batch_size: {{values: [{HUGE}]}}}}\n",
     "configuration.batch_size.values[0]"),
    (f"configuration: {{lr: {{values: [-{HUGE}]}}}}\n", "configuration.lr.values[0]"),
    (f"configuration: {{units: {{min: 1, max: {HUGE}, log: true}}}}\n", "configuration.units.max"),
    (LR + f"settings: {{budget: {HUGE}}}\n", "settings.budget"),
    (LR + f"settings: {{carbon_intensity: {HUGE}}}\n", "settings.carbon_intensity"),
    (LR + f"settings: {{runs: {HUGE}}}\n", "settings.runs"),
    (f"configuration: {{mine: {{values: [{'9' * 5000}]}}}}\n", "configuration.mine.values[0]"),
])
def test_an_integer_beyond_a_float_s_range_is_refused_where_it_is(tmp_path, text, where):
    message = refused(tmp_path, text)
    assert f": {where} (line " in message and FLOAT_RANGE in message
    assert "digits)'" in message and len(message) < 400  # not 400 digits shown back


def test_the_number_helpers_refuse_an_int_a_float_cannot_hold():
    assert yamlload.finite(10 ** 300) and not yamlload.finite(10 ** 400)
    assert not yamlload.finite(-(10 ** 400)) and yamlload.finite(True)
    with pytest.raises(budget.BudgetError):
        budget.parse(10 ** 400)
    with pytest.raises(ranges.RangeError) as err:
        ranges.parse({"min": 1, "max": 10 ** 400})
    assert err.value.key == "max"


def test_check_says_it_in_one_line_not_a_traceback(tmp_path, capsys):
    path = write(tmp_path, f"configuration: {{batch_size: {{values: [{HUGE}]}}}}\n")
    assert cli.main(["check", "--no-probe", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and FLOAT_RANGE in err


# -- 2. seeds numpy takes: seed and seed + runs - 1 in [0, 2**32 - 1] -----------------------

@pytest.mark.parametrize("settings, where, allowed", [
    ("{seed: -5}", "settings.seed: got -5", "an integer in [0, 4294967295]"),
    ("{seed: 4294967296}", "settings.seed: got 4294967296", "an integer in [0, 4294967295]"),
    # runs 8 and final_seeds 3: the highest seed is seed + 7 + 2
    ("{seed: 4294967290}", "settings.seed: got 4294967290", "an integer in [0, 4294967286] with "
                                                           "runs 8 and final_seeds 3"),
    ("{seed: 4294967295, runs: 2, final_seeds: 1}", "settings.seed: got 4294967295",
     "an integer in [0, 4294967294] with runs 2 and final_seeds 1"),
    (f"{{runs: {'9' * 300}}}", "settings.runs: got 999", "a positive integer, at most"),
    ("{runs: 4294967296}", "settings.runs: got 4294967296", "at most 4294967294 with "
                                                            "final_seeds 3"),
])
def test_a_seed_numpy_refuses_is_refused_before_any_run(tmp_path, settings, where, allowed):
    message = refused(tmp_path, LR + f"settings: {settings}\n")
    assert f": {where}" in message and allowed in message


def test_the_highest_seeds_numpy_takes_pass(tmp_path):
    config = space.load(write(tmp_path, LR + "settings: {seed: 4294967286}\n"))
    assert config.settings["seed"] + 7 + 2 == 2 ** 32 - 1
    assert space.load(write(tmp_path, LR + "settings: {seed: 0}\n")).settings["seed"] == 0


# -- 3. a key under configuration that is not text: a TypeError in sorted(space) before -----

@pytest.mark.parametrize("key, given", [("~", "None"), ("true", "True"), ("1", "1"),
                                        ("0.5", "0.5")])
def test_a_dimension_s_name_is_text(tmp_path, key, given):
    message = refused(tmp_path, f"configuration: {{lr: {{values: [0.1]}}, {key}: "
                                "{values: [1]}}\n")
    assert f": configuration.{given}: got {given}; allowed: a dimension's name, text" in message


def test_a_quoted_key_is_a_dimension_of_your_own(tmp_path):
    config = space.load(write(tmp_path, "configuration: {'true_ish': {values: [1, 2]}}\n"))
    assert config.own_dimensions == ["true_ish"]


# -- 4. an objective Keras's compile cannot log: every run failed before --------------------

def test_an_objective_keras_cannot_compile_is_refused_with_the_near_name(tmp_path):
    message = refused(tmp_path, "configuration: {model: {values: [ffnn]}}\n"
                                "settings: {objective: val_f1, objective_mode: max}\n")
    assert ": settings.objective: got 'val_f1'; allowed: 'val_' + a metric Keras compiles" \
        in message and "did you mean" in message and "f1_score" not in message


@pytest.mark.parametrize("name", ["val_f1_score", "val_F1Score", "val_f_beta_score"])
def test_a_metric_that_logs_one_value_per_class_is_refused(tmp_path, name):
    """Compiled by name, F1Score's average is None: a vector per epoch, which no run could
    be ranked by (results.json's objective value is one number)."""
    message = refused(tmp_path, "configuration: {model: {values: [ffnn]}}\n"
                                f"settings: {{objective: {name}, objective_mode: max}}\n")
    assert f"settings.objective: got '{name}'" in message
    assert "one value per class" in message


@pytest.mark.parametrize("name", ["val_auc", "val_acc", "val_mae", "val_true_positives"])
def test_objectives_keras_compiles_pass(tmp_path, name):
    config = space.load(write(tmp_path, "configuration: {model: {values: [ffnn]}}\n"
                                        f"settings: {{objective: {name}, objective_mode: max}}\n"))
    assert config.settings["objective"] == name


def test_your_own_training_loop_logs_metrics_of_its_own(tmp_path):
    (tmp_path / "loop.py").write_text("def train(params, callbacks):\n    return {}\n")
    config = space.load(write(tmp_path, LR + "settings: {train: 'loop:train', objective: "
                                             "val_f1, objective_mode: max}\n"))
    assert config.settings["objective"] == "val_f1"


def test_checking_an_objective_imports_no_keras(tmp_path):
    """check --no-probe loads no Keras, for a misspelt objective too (the list, not Keras)."""
    path = write(tmp_path, "configuration: {model: {values: [ffnn]}}\n"
                           "settings: {objective: val_f1, objective_mode: max}\n")
    code = ("import sys\nfrom greenscreen_pipeline import space\ntry:\n"
            f"    space.load({str(path)!r})\nexcept space.ConfigError:\n    pass\n"
            "print('keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_the_metric_list_is_the_installed_keras_s_registry():
    pytest.importorskip("keras")
    import keras
    from keras.src.metrics import ALL_OBJECTS_DICT

    usable = set()
    for name in ALL_OBJECTS_DICT:
        try:
            keras.metrics.get(name)
        except (ValueError, TypeError):
            continue
        usable.add(name)
    listed = set(objective.KERAS_METRICS) - {"acc"}  # compile's own alias of accuracy
    assert listed <= usable  # every listed name compiles in the installed Keras
    installed = tuple(int(n) for n in keras.__version__.split(".")[:2])
    assert installed >= objective.KERAS_LISTED
    if installed == objective.KERAS_LISTED:  # the list is this Keras's, all of it
        assert listed == usable - set(objective.NOT_METRICS)


def test_a_newer_keras_is_asked_for_a_name_the_list_lacks(monkeypatch):
    assert not objective.compiles("f1")  # this Keras is the listed one: no import
    monkeypatch.setattr(objective, "KERAS_LISTED", (3, 0))
    monkeypatch.setattr(objective, "KERAS_METRICS", ("accuracy",))
    assert objective.compiles("f1_score") and not objective.compiles("f1")
    assert not objective.compiles("io_u")  # needs arguments: compile cannot make it
    assert not objective.compiles("metric")


# -- 5. a misspelt objective, blamed on objective_mode before ------------------------------

@pytest.mark.parametrize("name, near", [("val_acuracy", "val_accuracy"), ("val_los", "val_loss"),
                                        ("accuracy", "val_accuracy")])
def test_a_misspelt_objective_is_blamed_on_the_objective(tmp_path, name, near):
    message = refused(tmp_path, LR + f"settings: {{objective: {name}}}\n")
    assert f": settings.objective: got {name!r}" in message
    assert f"(did you mean {near!r}?)" in message


def test_with_your_own_loop_a_typo_is_still_the_objective_s_and_a_new_name_the_mode_s():
    from greenscreen_pipeline.objective import Objective, ObjectiveError

    with pytest.raises(ObjectiveError) as err:
        Objective.from_settings({"train": "loop:train", "objective": "val_acuracy"})
    assert err.value.key == "objective" and "did you mean 'val_accuracy'" in err.value.allowed
    with pytest.raises(ObjectiveError) as err:
        Objective.from_settings({"train": "loop:train", "objective": "val_wiggle"})
    assert err.value.key == "objective_mode"


# -- 6. did you mean, for every word; a settings section that is not a mapping -------------

@pytest.mark.parametrize("text, where, near", [
    ("configuration: {optimizer: {values: [Adamm]}}\n", "configuration.optimizer.values[0]",
     "Adam"),
    ("configuration: {model: {values: [small_cn]}}\n", "configuration.model.values[0]",
     "small_cnn"),
    ("configuration: {dataset: {values: [digit]}}\n", "configuration.dataset.values[0]",
     "digits"),
    ("configuration: {preprocessing: {values: [NONE]}}\n",
     "configuration.preprocessing.values[0]", "None"),
    (LR + "settings: {objective_mode: maximize}\n", "settings.objective_mode", "max"),
    (LR + "settings: {recommend: value}\n", "settings.recommend", "values"),
    (LR + "settings: {search: paretto}\n", "settings.search", "pareto"),
    (LR + "settings: {early_stop: halfing}\n", "settings.early_stop", "halving"),
    (LR + "settings: {energy_source: rapl2}\n", "settings.energy_source", "rapl"),
    (LR + "settings: {loss: categorical_crossentropyy}\n", "settings.loss",
     "categorical_crossentropy"),
    ("configuration: {dataset: {value: [digits]}}\n", "configuration.dataset", "values"),
])
def test_a_misspelt_word_says_which_it_may_be(tmp_path, text, where, near):
    message = refused(tmp_path, text)
    assert f": {where}: got " in message and message.endswith(f"(did you mean {near!r}?).")


@pytest.mark.parametrize("section", ["[]", "0", "''", "false", "[runs: 2]"])
def test_a_settings_section_that_is_not_a_mapping_is_refused(tmp_path, section):
    message = refused(tmp_path, LR + f"settings: {section}\n")
    assert ": settings: got " in message and "allowed: a mapping of runs, epochs" in message


@pytest.mark.parametrize("section", ["[]", "0", "''", "false", "{}", "null"])
def test_a_configuration_section_that_is_not_a_mapping_is_refused(tmp_path, section):
    message = refused(tmp_path, f"configuration: {section}\n")
    assert ": configuration: got " in message and "allowed: a mapping of dimensions" in message


def test_settings_left_empty_are_the_defaults(tmp_path):
    config = space.load(write(tmp_path, LR + "settings:\n  # runs: 4\n"))
    assert config.settings["runs"] == 8


def test_a_module_name_of_unicode_letters_is_your_code_for_check_and_the_runs_alike():
    """check took "ümod:data" for your code, the runs for a built-in dataset's name: every
    run failed with "dataset='ümod:data' is not valid"."""
    from greenscreen_pipeline.user_code import is_entry

    assert is_entry("ümod:data") and is_entry("pkg.sub:build_1")
    assert is_entry("exp.2024.d:data")  # importlib imports a folder named 2024
    assert not is_entry("my-data:load") and not is_entry("a:b:c") and not is_entry("digits")
    assert not is_entry("a..b:f") and not is_entry("mod:2f")


def test_run_one_refuses_an_index_outside_the_sweep(tmp_path, capsys):
    """`run-one --index 7` of a 2-run sweep trained a folder 007 outside it."""
    path = write(tmp_path, "configuration: {model: {values: [ffnn]}}\nsettings: {runs: 2}\n")
    sweep_dir = tmp_path / "sweep"
    assert cli.main(["run-one", "--config", str(path), "--sweep-dir",
                     str(sweep_dir), "--index", "7"]) == 2
    err = capsys.readouterr().err
    assert "--index 7 is not a run of this sweep; allowed: 0 to 1 (settings.runs 2" in err
    assert not (sweep_dir / "007").exists()


@pytest.mark.parametrize("options, said", [
    (["--time", "4h"], "--time (the command line's, for settings.slurm_time): got '4h'"),
    (["--runs", "99999999999"],
     "--runs (the command line's, for settings.runs): got 99999999999"),
])
def test_a_bad_option_is_blamed_on_the_option_not_on_config_yaml(tmp_path, capsys, options,
                                                                  said):
    """`sweep slurm --time 4h` said "config.yaml: settings.slurm_time: got '4h'", a key the
    file does not hold."""
    path = write(tmp_path, "configuration: {model: {values: [ffnn]}}\n")
    assert cli.main(["sweep", "slurm", "--dry-run", "--no-probe", "--config", str(path),
                     "--sweep-dir", str(tmp_path / "s"), *options]) == 2
    err = capsys.readouterr().err
    assert said in err and "settings.slurm_time: got" not in err, err
    config = write(tmp_path, "configuration: {model: {values: [ffnn]}}\n"
                             "settings: {slurm_time: 4h}\n")
    with pytest.raises(space.ConfigError, match=r"settings\.slurm_time: got '4h'"):
        space.load(config)  # given in the file: the file's key


@pytest.mark.parametrize("options, said", [
    (["--gpus", "x,y"], "'x' is neither a GPU index nor a GPU-/MIG- UUID"),
    (["--gpus", "0,0"], "a GPU is named twice"),
    (["--gpus", "0,1,2,3"], "--gpus names 4 GPUs for --workers 1: worker k sees only GPU k, "
                            "so 1, 2, 3 would train nothing; give --workers 4, or only the "
                            "GPUs the workers use (--gpus 0)"),
])
def test_gpus_name_gpus_each_worker_trains_on(capsys, options, said):
    """--gpus x,y hid every GPU (CUDA_VISIBLE_DEVICES=x), and --gpus 0,1,2,3 with one
    worker left three GPUs idle while the sweep's meter measured all four."""
    with pytest.raises(SystemExit) as exited:
        cli.parse(["sweep", "local", *options])
    assert exited.value.code == 2 and said in capsys.readouterr().err


def test_gpus_that_each_worker_uses_pass():
    assert cli.parse(["sweep", "--workers", "3", "--gpus", "0,1,GPU-8e2c-11"]).workers == 3
    assert cli.parse(["sweep", "--workers", "4", "--gpus", "0,1"]).workers == 4  # they share
    assert cli.parse(["sweep", "--gpus", "-1"]).gpus == "-1"  # CUDA's "no GPU"
    assert cli.parse(["sweep", "--gpus", ""]).gpus == ""  # none given


def test_a_dimension_of_your_own_no_code_reads_is_said_at_check(tmp_path, capsys):
    """`configuration: {learning_rate: ...}` with the built-in model: sampled, recorded and
    ignored by every run (lr stayed 0.001), named only after run 000 had trained."""
    path = write(tmp_path, "configuration:\n  learning_rate: {values: [0.01]}\n"
                           "  model: {values: [ffnn]}\n")
    assert cli.main(["check", "--no-probe", "--config", str(path)]) == 0
    err = capsys.readouterr().err
    assert ("configuration.learning_rate is a dimension of your own, but no code of yours "
            "runs") in err and "did you mean 'lr'?" in err
    (tmp_path / "mine.py").write_text("def build(input_shape, num_classes, params):\n"
                                      "    return None\n")
    path.write_text("configuration:\n  learning_rate: {values: [0.01]}\n"
                    "  model: {values: ['mine:build']}\n")
    assert cli.main(["check", "--no-probe", "--config", str(path)]) == 0
    assert "no code of yours runs" not in capsys.readouterr().err  # yours may read it
