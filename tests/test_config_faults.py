"""config.yaml as YAML 1.2 reads numbers, and a file that is not YAML or not UTF-8, an empty
sweep_dir and a number that is not finite as the one error form (issue 33)."""

import re

import pytest

from greenscreen_pipeline import cli, space


def write(tmp_path, data: bytes):
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    return path


def test_numbers_with_an_exponent_are_numbers(tmp_path):
    path = write(tmp_path, b"configuration:\n  lr: {values: [5e-1, 1e-3, 2E-4, 0.01]}\n"
                           b"  mine: {min: 1e-4, max: 1e-1, log: true}\n"
                           b"settings: {accuracy_floor: 5e-2, worker_memory_growth_mb: 1e3}\n")
    config = space.load(path)
    assert config.space["lr"] == [0.5, 0.001, 0.0002, 0.01]
    assert (config.space["mine"]["min"], config.space["mine"]["max"]) == (1e-4, 0.1)
    assert config.settings["accuracy_floor"] == 0.05
    assert config.settings["worker_memory_growth_mb"] == 1000.0


def test_the_loader_stays_safe(tmp_path):
    path = write(tmp_path, b"configuration: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(space.ConfigError, match="line 1, column 16"):
        space.load(path)


@pytest.mark.parametrize("data, where, given, allowed", [
    (b"configuration:\n  lr: {values: [0.1]\nsettings: {runs: 2}\n", "line 3, column 1",
     "'settings: {runs: 2}'", "valid YAML (while parsing a flow mapping at line 2, column 7"),
    (b"configuration:\n  lr: {values: [0.1]}\n  a: b: c\n", "line 3, column 7", "'a: b: c'",
     "mapping values are not allowed here"),
    (b"configuration:\n  lr: {values: [0.1]}\n# caf\xe9\n", "line 3, column 6",
     "'byte 0xe9'", "UTF-8 text"),
    (b"configuration:\n  lr: {values: [0.1]}\nsettings: {sweep_dir: ''}\n",
     "settings.sweep_dir", "''", "a folder path (not empty)"),
    (b"configuration:\n  lr: {values: [.inf]}\n", "configuration.lr.values[0]", "inf",
     "a finite number in (0.0, inf)"),
    (b"configuration:\n  lr: {min: 1e-4, max: .inf}\n", "configuration.lr.max", "inf",
     "a finite number"),
    (b"configuration:\n  lr: {values: [0.1]}\nsettings: {accuracy_floor: .nan}\n",
     "settings.accuracy_floor", "nan", "a number in [0, 1]"),
    (b"configuration:\n  lr: {values: [0.1]}\nsettings: {carbon_intensity: .inf}\n",
     "settings.carbon_intensity", "inf", "a number >= 0"),
    (b"configuration:\n  mine: {values: [1, .nan]}\n", "configuration.mine.values[1]", "nan",
     "numbers finite"),
    (b"configuration:\n  mine: {min: 0, max: .inf}\n", "configuration.mine.max", "inf",
     "a finite number"),
    # a key twice: PyYAML kept the last one silently
    (b"configuration:\n  lr: {values: [0.01]}\n  lr: {values: [0.1]}\n",
     "configuration.lr (line 3, column 3)", "'lr'", "each key once in a mapping ('lr' is "
     "already at line 2)"),
    (b"settings: {runs: 2, epochs: 1, runs: 3}\nconfiguration: {lr: {values: [0.1]}}\n",
     "settings.runs (line 1, column 32)", "'runs'", "each key once"),
    (b"configuration:\n  mine: {values: [1]}\nb:\n  1: a\n  0x1: b\n",
     "b.0x1 (line 5, column 3)", "'0x1'", "each key once in a mapping ('0x1' is already at "
     "line 4)"),  # 1 and 0x1 read as one key: the first was lost
    (b"configuration:\n  mine: {values: [1]}\nb:\n  on: 3\n", "b.on (line 4, column 3)",
     "'on'", "true or false for a switch"),  # a key `on` read as True
    # YAML 1.1's booleans: Norway's code read False, a list of yes/no mixed types
    (b"settings: {country: NO}\nconfiguration: {lr: {values: [0.1]}}\n",
     "settings.country (line 1, column 21)", "'NO'", "or text in quotes: 'NO'"),
    (b"configuration:\n  use_bias: {values: [yes, no, 'off']}\n",
     "configuration.use_bias.values[0] (line 2, column 23)", "'yes'",
     "true or false for a switch"),
    # YAML 1.1's octal and base-60 numbers: 010 read 8, 1:30:00 read 5400, 08 read 8.0
    (b"settings: {epochs: 010}\nconfiguration: {lr: {values: [0.1]}}\n",
     "settings.epochs (line 1, column 20)", "'010'", "write 10 (YAML 1.1 reads a leading 0"),
    (b"settings: {epochs: 08}\nconfiguration: {lr: {values: [0.1]}}\n",
     "settings.epochs (line 1, column 20)", "'08'", "write 8"),
    (b"settings: {slurm_time: 1:30:00}\nconfiguration: {lr: {values: [0.1]}}\n",
     "settings.slurm_time (line 1, column 24)", "'1:30:00'", "or text in quotes: '1:30:00'"),
    (b"configuration:\n  units: {values: [8, 1:30]}\n",
     "configuration.units.values[1] (line 2, column 23)", "'1:30'", "as base 60"),
    (b"configuration: {lr: {values: [0.1]}}\nsettings: {runs: 2, epocs: 3}\n", "settings",
     "'epocs'", "a setting: runs, epochs,"),
    (b"configuration: {lr: {values: [0.1]}}\nsetings: {runs: 2}\n", "top level",
     "'setings'", "the keys 'configuration' and 'settings' (did you mean 'settings'?)"),
])
def test_each_fault_is_one_error_naming_where_what_and_what_is_allowed(tmp_path, data, where,
                                                                       given, allowed):
    path = write(tmp_path, data)
    with pytest.raises(space.ConfigError) as err:
        space.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {where}: got {given}; allowed: ")
    assert allowed in message


def test_a_misspelt_setting_says_which_it_may_be(tmp_path):
    path = write(tmp_path, b"configuration: {lr: {values: [0.1]}}\nsettings: {epocs: 3}\n")
    with pytest.raises(space.ConfigError, match=r"got 'epocs'; .*\(did you mean 'epochs'\?\)"):
        space.load(path)


def test_keys_that_read_differently_are_two_keys(tmp_path):
    path = write(tmp_path, b"b: {1: x, '1': y}\n")
    assert space.yamlload.read(str(path)) == {"b": {1: "x", "1": "y"}}


def test_true_false_quoted_text_and_merge_keys_are_read_as_before(tmp_path):
    path = write(tmp_path, b"base: &base {runs: 2, epochs: 1}\n"
                           b"configuration:\n  flag: {values: [true, False, 'no', \"on\"]}\n")
    assert space.yamlload.read(str(path))["configuration"]["flag"] == {
        "values": [True, False, "no", "on"]}
    path = write(tmp_path, b"base: &b {runs: 2, epochs: 1}\nsettings: {<<: *b, runs: 3}\n")
    assert space.yamlload.read(str(path))["settings"] == {"runs": 3, "epochs": 1}


def test_an_empty_sweep_dir_on_the_command_line_is_refused(tmp_path, capsys):
    path = write(tmp_path, b"configuration:\n  lr: {values: [0.1]}\n")
    assert cli.main(["check", "--config", str(path), "--sweep-dir", ""]) == 2
    assert "--sweep-dir (the command line's, for settings.sweep_dir): got ''" in \
        capsys.readouterr().err  # the option that gave it, not a key of config.yaml


def test_a_config_that_is_not_utf8_is_one_line_not_a_traceback(tmp_path, capsys):
    path = write(tmp_path, "configuration:\n  lr: {values: [0.1]}\n".encode("utf-16"))
    assert cli.main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "UTF-8 text" in err and "Traceback" not in err


def test_a_value_listed_twice_is_refused_naming_both_places(tmp_path):
    """`lr: {values: [0.01, 0.01, 0.1]}` was a space of 3: runs 000 and 001 trained one
    configuration and, with runs: 2, 0.1 was never tried, unsaid."""
    from greenscreen_pipeline import space

    config = tmp_path / "config.yaml"
    config.write_text("configuration:\n  learning_rate: {values: [0.01, 1e-2, 0.1]}\n")
    with pytest.raises(space.ConfigError, match=re.escape(
            "configuration.learning_rate.values[1]: got 0.01; allowed: each value once "
            "(configuration.learning_rate.values[0] is 0.01 already).")):
        space.load(config)
    config.write_text("configuration:\n  hflip: {values: [true, false]}\n  "
                      "units: {values: [1, '1', 1.5]}\n")
    assert space.load(config).space["units"] == [1, "1", 1.5]  # 1 and '1' differ


def test_an_error_shows_at_most_a_few_hundred_characters_of_what_it_got():
    """YAML aliases nested eight deep, 438 bytes of config.yaml, made a 351 MB error line;
    a long list was shown whole."""
    from greenscreen_pipeline.yamlload import ConfigError

    nested = [1] * 9
    for _ in range(8):
        nested = [nested] * 9  # what `&a1 [*a0, *a0, ...]` eight deep reads as
    text = str(ConfigError("config.yaml", "configuration.units.values[0]", nested, "a number"))
    assert len(text) < 600 and text.startswith("config.yaml: configuration.units.values[0]: "
                                               "got [[[[...], [...], ")
    assert text.endswith("...(cut); allowed: a number.")
    assert "got [0, 1, 2, 3, 4, 5, 6, 7, ...]; " in str(
        ConfigError("c", "settings", list(range(10**6)), "a mapping"))
    assert str(ConfigError("c", "seed", "x" * 50, "an integer")) == \
        f"c: seed: got {'x' * 50!r}; allowed: an integer."
