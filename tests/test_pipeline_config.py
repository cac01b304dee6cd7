"""config.yaml: the original ten dimensions, determinism, and one clear error per mistake."""

import textwrap
from pathlib import Path

import pytest

from greenscreen_pipeline import space

ORIGINAL = """
configuration:
  preprocessing: {values: [None, standardization, robust_scaling, minmax]}
  augmentation: {values: [None, random, mixup, cutmix]}
  precision: {values: [float16, float32, float64, global_policy_float16]}
  batch_size: {values: [4, 32, 64, 128]}
  partitioning: {values: [60-20-20, 70-15-15, 80-10-10, 90-5-5]}
  lr: {values: [0.01, 0.00015, 0.0008, 0.00625]}
  lr_schedule: {values: [constant, exponential, polynomial, cosine]}
  optimizer_momentum: {values: [0.0, 0.5, 0.9, 0.99]}
  optimizer: {values: [RMSProp, SGD, Adam, AdamW]}
  internal: {values: [None, pre_quantization, post_quantization, jit_compilation]}
"""


ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_original_ten_dimensions_parse_verbatim(tmp_path):
    config = space.load(write(tmp_path, ORIGINAL))
    assert config.space["batch_size"] == [4, 32, 64, 128]
    assert config.space["preprocessing"][0] == "None"
    assert config.space["partitioning"][0] == "60-20-20"
    assert config.settings["runs"] == 8  # defaults fill the settings
    assert config.space["model"] == ["small_cnn"]  # left-out dimensions take the baseline


def test_the_shipped_config_is_valid():
    config = space.load("config.yaml")
    assert set(config.space["method"]) == {"standard", "ranked", "gated", "pruned"}


def test_run_zero_is_the_baseline_and_runs_are_deterministic(tmp_path):
    path = write(tmp_path, ORIGINAL)
    a, b = space.load(path), space.load(path)
    assert a.run(0) == {dim: values[0] for dim, values in a.space.items()}
    assert [a.run(i) for i in range(20)] == [b.run(i) for i in range(20)]
    other = space.load(path, {"seed": 23})
    assert [a.run(i) for i in range(1, 20)] != [other.run(i) for i in range(1, 20)]
    assert len({tuple(sorted(a.run(i).items())) for i in range(20)}) > 10


@pytest.mark.parametrize("text, where, allowed", [
    ("configuration: {batch_size: {values: [32]}}\nextra: 1", "top level", "'configuration'"),
    ("configuration: {optimiser: {values: [Adam]}}", "configuration.optimiser",
     "did you mean 'optimizer'?"),
    ("configuration: {seed: {values: [1, 2]}}", "configuration.seed", "does not record itself"),
    ("configuration: {train: {values: [a, b]}}", "configuration.train",  # the loop's record
     "does not record itself"),
    ("configuration: {colour: {values: [{a: 1}]}}", "configuration.colour.values[0]",
     "a scalar (a number, a string or a boolean)"),
    ("configuration: {model: {values: ['nomodule_xyz:build']}}", "configuration.model.values[0]",
     "module 'nomodule_xyz' does not import"),
    ("configuration: {batch_size: {values: [big]}}", "configuration.batch_size.values[0]",
     "an integer in [1, inf)"),
    ("configuration: {batch_size: {values: []}}", "configuration.batch_size.values",
     "a non-empty list"),
    ("configuration: {optimizer: {values: [Adam, Nadam]}}", "configuration.optimizer.values[1]",
     "one of Adam, RMSProp, SGD, AdamW"),
    ("configuration: {partitioning: {values: [80-10-5]}}", "configuration.partitioning.values[0]",
     "summing to 100"),
    # A superscript digit passed str.isdigit, then int() raised a traceback.
    ("configuration: {partitioning: {values: ['\u00b20-40-40']}}",
     "configuration.partitioning.values[0]", "summing to 100"),
    # Not a Python name: check took it for code, the runs for a built-in name.
    ("configuration: {dataset: {values: ['my-data:load']}}", "configuration.dataset.values[0]",
     "'module:function': a dotted module path and a Python name"),
    ("configuration: {lr: {values: [-0.1]}}", "configuration.lr.values[0]", "a number in (0.0"),
    ("configuration: {lr: [0.1]}", "configuration.lr", "exactly one key, 'values'"),
    ("configuration: {lr: {values: [0.1]}}\nsettings: {runs: 0}", "settings.runs",
     "a positive integer"),
    ("configuration: {lr: {values: [0.1]}}\nsettings: {speed: 1}", "settings",
     "runs, epochs"),
    ("configuration: {dataset: {values: [cifar10_dir]}}", "configuration.dataset.values[0]",
     "settings.data_path"),
    ("configuration: [1, 2", "line 1, column 21", "valid YAML"),
    ("configuration: {lr: {values: [0.1]}}\nsettings: {country: XX}", "settings.country",
     "an ISO 3166 alpha-2 or alpha-3 code"),
    ("configuration: {lr: {values: [0.1]}}\nsettings: {carbon_intensity: -5}",
     "settings.carbon_intensity", "a number >= 0"),
    ("configuration: {lr: {values: [0.1]}}\nsettings: {recommend: best}", "settings.recommend",
     "run or values"),
    ("configuration: {lr: {values: [0.1]}}\nsettings: {save_models: 'yes'}",
     "settings.save_models", "true or false"),
    ("configuration: {lr: {values: [0.1]}}\nsettings: {keep_checkpoints: 1}",
     "settings.keep_checkpoints", "true or false"),
])
def test_a_malformed_config_gives_one_clear_error(tmp_path, text, where, allowed):
    path = write(tmp_path, text)
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {where}: got ")
    assert allowed in message and "allowed:" in message


def test_carbon_and_model_settings_are_read_with_their_defaults(tmp_path):
    plain = space.load(write(tmp_path, "configuration: {lr: {values: [0.1]}}"))
    assert plain.settings["country"] == "" and plain.settings["carbon_intensity"] is None
    assert plain.settings["save_models"] is False and plain.settings["keep_checkpoints"] is False
    given = space.load(write(tmp_path, """
        configuration: {lr: {values: [0.1]}}
        settings: {country: FRA, carbon_intensity: 120, save_models: true}
    """))
    assert given.settings["carbon_intensity"] == 120.0 and given.settings["country"] == "FRA"
    assert given.settings["save_models"] is True


def test_method_settings_are_dimensions_validated_like_the_others(tmp_path):
    config = space.load(write(tmp_path, """
        configuration:
          method: {values: [standard, ranked, gated, pruned]}
          high_percentage: {values: [60, 40]}
          low_percentage: {values: [10, 30]}
          percentage_schedule: {values: [linear, exponential]}
          ranked_granularity: {values: [layer, weight]}
          ranked_freeze: {values: [ranked, bottom_up]}
          target_activation_rate: {values: [0.3, 0.1]}
          warmup_epochs: {values: [1, 0]}
          gating_selector: {values: [significance, random]}
          gating_scoring: {values: [full, stale]}
          target_sparsity: {values: [0.8, 0.5]}
          pruning_frequency: {values: [0.1, 1]}
    """))
    assert config.run(0)["method"] == "standard"  # run 000 is still the baseline
    assert config.space["pruning_frequency"] == [0.1, 1.0]
    bad = {"ranked_granularity: {values: [neuron]}": ("configuration.ranked_granularity"
                                                     ".values[0]", "one of weight, layer"),
           "target_activation_rate: {values: [0]}": ("configuration.target_activation_rate"
                                                     ".values[0]", "a number in (0.0, 1.0]"),
           "warmup_epochs: {values: [1.5]}": ("configuration.warmup_epochs.values[0]",
                                              "an integer in [0, inf)"),
           "target_sparsity: {values: [1.0]}": ("configuration.target_sparsity.values[0]",
                                               "a number in [0.0, 1.0)"),
           "gating_selector: {values: [best]}": ("configuration.gating_selector.values[0]",
                                                 "one of significance, random"),
           "ranked_freeze: {values: [top_down]}": ("configuration.ranked_freeze.values[0]",
                                                   "one of ranked, bottom_up"),
           "gating_scoring: {values: [full, cached]}": ("configuration.gating_scoring"
                                                        ".values[1]", "one of full, stale"),
           "low_percentage: {values: [10, 70]}": ("configuration.low_percentage.values[1]",
                                                  "a number <= every high_percentage value")}
    for line, (where, allowed) in bad.items():
        path = write(tmp_path, f"configuration:\n  {line}\n")
        with pytest.raises(space.ConfigError) as err:
            space.load(path)
        assert str(err.value).startswith(f"{path}: {where}: got ") and allowed in str(err.value)


def test_mixup_under_a_sparse_loss_is_refused_by_the_commands_that_train(tmp_path, capsys):
    """MixUp's mixed labels under a sparse loss: every run failed in Keras. A sweep that
    trained such runs can still be analysed and reported."""
    from greenscreen_pipeline import cli

    path = write(tmp_path, "configuration: {augmentation: {values: [None, mixup]}}\n"
                           "settings: {loss: sparse_categorical_crossentropy}")
    assert cli.main(["check", "--no-probe", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration.augmentation.values[1]: got 'mixup'" in err
    assert "which a class index cannot hold" in err
    space.load(path)  # what analyze and report load: no refusal


def test_a_gated_run_whose_warm_up_is_the_whole_run_is_skipped_with_its_epochs(tmp_path,
                                                                                capsys):
    """Refused at load, the rule broke `check --epochs 1` of the shipped config (and the
    analysis of such a sweep). A gated run trains every sample during its warm-up."""
    from greenscreen_pipeline import cli
    from greenscreen_pipeline.run import rules

    gated = {"method": "gated", "warmup_epochs": 1}
    assert "would never gate" in rules.epochs_reason(gated, 1)
    assert rules.epochs_reason(gated, 2) is None  # one epoch gated
    assert rules.epochs_reason({**gated, "method": "standard"}, 1) is None
    assert cli.main(["check", "--no-probe", "--config", str(ROOT / "config.yaml"),
                     "--epochs", "1"]) == 0

