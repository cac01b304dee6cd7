"""`greenscreen check` refuses a data folder the runs cannot read, once, before any run:
settings.data_path for cifar10_dir (a batch missing, empty, truncated, not a pickle, or
naming objects the safe reader refuses, arrays of the wrong shape, a batch number skipped)
and image_folder (empty, class folders without images, classes too small for a
partitioning's stratified split), read as the runs read them, without Keras.
Also: a boolean dimension (resnet_shortcuts) takes true or false, not 1 or 0."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from greenscreen.datasets import DatasetError, image_folder, load_cifar10_dir
from greenscreen_pipeline import space
from greenscreen_pipeline.cli import main
from greenscreen_pipeline.yamlload import ConfigError

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
ROOT = Path(__file__).resolve().parents[1]


def cifar(root: Path, protocol: int = 2, rows: int = 4) -> Path:
    """A tiny CIFAR-10 python folder: six batches of `rows` images each."""
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in CIFAR_FILES:
        batch = {b"batch_label": b"tiny", b"data": rng.integers(0, 256, (rows, 3072), np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, rows)],
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(rows)]}
        (root / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    return root


def images(root: Path, classes=("cat", "dog"), per_class: int = 2) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir()
    for name in classes:
        (root / name).mkdir()
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(
                root / name / f"{i}.png")
    return root


def config(tmp_path: Path, data_path: str, dataset: str, extra: str = "") -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"settings: {{data_path: {data_path!r}}}\n"
                    f"configuration: {{dataset: {{values: [digits, {dataset}]}}{extra}}}\n")
    return str(path)


def refused(tmp_path: Path, folder: Path, dataset: str) -> str:
    """check_data_path's ConfigError for `folder` as `dataset`, checked as its message."""
    path = config(tmp_path, str(folder), dataset)
    with pytest.raises(ConfigError) as err:
        space.check_data_path(space.load(path))
    message = str(err.value)
    assert message.startswith(f"{path}: settings.data_path: got {str(folder)!r}; allowed: ")
    assert "configuration.dataset.values[1]" in message and "\n" not in message
    return message


# cifar10_dir


def test_a_complete_cifar_folder_passes_in_every_protocol(tmp_path):
    for protocol in (2, 3, 4, 5):
        folder = cifar(tmp_path / f"p{protocol}", protocol)
        space.check_data_path(space.load(config(tmp_path, str(folder), "cifar10_dir")))
        assert load_cifar10_dir(str(folder))[0].shape == (24, 32, 32, 3)  # the runs read it


@pytest.mark.parametrize("gone", ["test_batch", "data_batch_*"])
def test_a_cifar_folder_missing_batches_is_refused(tmp_path, gone):
    folder = cifar(tmp_path / "data")
    for f in folder.glob(gone):
        f.unlink()
    message = refused(tmp_path, folder, "cifar10_dir")
    assert "data_batch_1..5 and test_batch" in message and f"missing: {gone}" in message


def test_a_cifar_folder_with_a_batch_number_skipped_is_refused_naming_it(tmp_path):
    """data_batch_1, 2, 4, 5: an unpacking cut short loaded four fifths of the data silently."""
    folder = cifar(tmp_path / "data")
    (folder / "data_batch_3").unlink()
    assert "missing: data_batch_3)" in refused(tmp_path, folder, "cifar10_dir")
    with pytest.raises(DatasetError, match="missing: data_batch_3"):
        load_cifar10_dir(str(folder))  # a run reads it by the same rule


def test_a_stray_batch_number_is_named_in_a_few_words_not_millions(tmp_path):
    folder = cifar(tmp_path / "data")
    (folder / "data_batch_20240101").write_bytes((folder / "data_batch_1").read_bytes())
    message = refused(tmp_path, folder, "cifar10_dir")
    assert ("missing: data_batch_6, data_batch_7, data_batch_8, data_batch_9, data_batch_10, "
            "20240090 more below data_batch_20240101)") in message and len(message) < 700


def test_batches_named_otherwise_are_named_as_not_batches(tmp_path):
    folder = cifar(tmp_path / "data")
    for n in range(1, 6):
        (folder / f"data_batch_{n}").rename(folder / f"data_batch_0{n}")
    message = refused(tmp_path, folder, "cifar10_dir")
    assert ("(missing: data_batch_*); data_batch_01, data_batch_02, data_batch_03 are not "
            "named as a batch (data_batch_1, data_batch_2, ...)") in message


def test_cifar_batches_are_read_in_number_order_and_copies_are_not_batches(tmp_path):
    folder = cifar(tmp_path / "data", rows=1)
    for n in range(6, 11):  # data_batch_10 after data_batch_9, not after data_batch_1
        (folder / f"data_batch_{n}").write_bytes((folder / "data_batch_1").read_bytes())
    (folder / "data_batch_1.bak").write_bytes(b"not a batch")  # neither read nor refused
    (folder / "data_batch_01").write_bytes(b"nor this")
    space.check_data_path(space.load(config(tmp_path, str(folder), "cifar10_dir")))
    from greenscreen.datasets import cifar10_files
    assert [f.name for f in cifar10_files(str(folder))] == [
        f"data_batch_{n}" for n in range(1, 11)] + ["test_batch"]
    assert load_cifar10_dir(str(folder))[0].shape == (11, 32, 32, 3)


def test_an_empty_cifar_folder_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    assert "missing: data_batch_*" in refused(tmp_path, tmp_path / "data", "cifar10_dir")


@pytest.mark.parametrize("keep", [0, 1, 100, -1])
def test_a_truncated_cifar_batch_is_refused_naming_it(tmp_path, keep):
    folder = cifar(tmp_path / "data", rows=40)
    batch = folder / "data_batch_3"
    raw = batch.read_bytes()
    batch.write_bytes(raw[:keep] if keep >= 0 else raw[:len(raw) // 2])  # inside the pixels
    with pytest.raises(DatasetError):  # what every run would meet
        load_cifar10_dir(str(folder))
    why = refused(tmp_path, folder, "cifar10_dir").split(
        f"here: {batch} is not a readable CIFAR-10 batch: ")[1]
    assert ("the file is empty" if keep == 0 else "truncated") in why


def test_a_cifar_batch_that_is_not_a_pickle_is_refused(tmp_path):
    folder = cifar(tmp_path / "data")
    (folder / "test_batch").write_text("<html>404 Not Found</html>\n")
    message = refused(tmp_path, folder, "cifar10_dir")
    assert f"{folder / 'test_batch'} is not a readable CIFAR-10 batch" in message


def test_a_pickle_that_is_not_a_cifar_batch_is_refused(tmp_path):
    folder = cifar(tmp_path / "data")
    (folder / "data_batch_2").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    message = refused(tmp_path, folder, "cifar10_dir")
    assert "data_batch_2 is not a CIFAR batch: expected a dict with b'data' and b'labels'" \
        in message


class Payload:  # unpickling calls open(marker, "w"): a file appears if code runs
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("protocol", [2, 4])
def test_a_cifar_batch_that_would_run_code_is_refused_and_runs_none(tmp_path, protocol):
    folder = cifar(tmp_path / "data")
    marker = tmp_path / "marker"
    batch = {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": Payload(marker)}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
    message = refused(tmp_path, folder, "cifar10_dir")
    assert not marker.exists()
    assert "test_batch is not a plain CIFAR-10 batch: it asks to load io.open" in message


def test_a_batch_that_is_a_folder_is_refused(tmp_path):
    folder = cifar(tmp_path / "data")
    (folder / "test_batch").unlink()
    (folder / "test_batch").mkdir()
    assert "test_batch" in refused(tmp_path, folder, "cifar10_dir")


# image_folder


def test_a_folder_of_class_folders_with_images_passes(tmp_path):
    folder = images(tmp_path / "data", per_class=10)  # the least the default 80-10-10 splits
    space.check_data_path(space.load(config(tmp_path, str(folder), "image_folder")))


def test_classes_too_small_for_a_partitioning_value_are_refused_naming_them(tmp_path):
    """Every run of that split would fail alike, one after another, with this message."""
    folder = images(tmp_path / "data", classes=("cat", "dog", "owl"), per_class=10)
    for extra in range(40):  # 20 % of the samples leave room for val and test
        Image.new("RGB", (4, 4)).save(folder / "cat" / f"more{extra}.png")
    for gone in range(7):
        (folder / "owl" / f"{gone}.png").unlink()
    path = config(tmp_path, str(folder), "image_folder",
                  extra=", partitioning: {values: [80-10-10, 34-33-33]}")
    with pytest.raises(ConfigError) as err:
        space.check_data_path(space.load(path))
    message = str(err.value)
    assert message.startswith(f"{path}: settings.data_path: got {str(folder)!r}; allowed: ")
    assert ("class folders large enough for the stratified 80-10-10 split its runs make "
            "(configuration.partitioning; 10 images in each class always are); here: the "
            "smallest: owl: 3 images (add images, or choose a partitioning with larger "
            "parts)") in message
    from greenscreen_pipeline.run.data import split
    labels = np.repeat([0, 1, 2], [50, 10, 3])
    with pytest.raises(ValueError):  # the runs' own split refuses it as check says
        split(np.zeros(len(labels)), labels, "80-10-10", 0)
    for ok in ("34-33-33", "40-30-30"):  # owl's 3 images split into the three parts
        split(np.zeros(len(labels)), labels, ok, 0)


def test_final_and_array_tasks_leave_the_split_of_every_partitioning_value_unchecked(
        tmp_path):
    """`final` trains one configuration's split of a sweep whose other partitioning values
    may have failed, and a Slurm array task's sweep was checked when it started: neither
    is refused for a value they do not train, nor lists every image again."""
    import argparse

    from greenscreen_pipeline import commands

    folder = images(tmp_path / "data", classes=("cat", "dog"), per_class=10)
    for gone in range(8):
        (folder / "dog" / f"{gone}.png").unlink()
    path = config(tmp_path, str(folder), "image_folder",
                  extra=", partitioning: {values: [80-10-10, 34-33-33]}")
    for command in ("final", "run-one"):
        commands.load_config(argparse.Namespace(command=command, config=path))
    for command in ("check", "sweep", "all"):
        with pytest.raises(ConfigError, match="large enough for the stratified 80-10-10"):
            commands.load_config(argparse.Namespace(command=command, config=path))
    (folder / "cat").rename(tmp_path / "gone")  # what a run reads is still checked
    with pytest.raises(ConfigError, match="one class folder"):
        commands.load_config(argparse.Namespace(command="run-one", config=path))


def sweep_of_two(tmp_path: Path, data: Path, partitionings: list[str]) -> tuple[Path, Path]:
    """A finished image_folder sweep (run folders written, analysed) of two runs, one per
    partitioning value, run 001's the cheaper: the recommendation. (config, sweep)."""
    from test_analysis_report import write_run

    from greenscreen_pipeline import analysis

    path = tmp_path / "config.yaml"
    path.write_text(f"settings: {{data_path: {str(data)!r}, runs: 2, epochs: 1, "
                    "final_seeds: 1, energy_source: estimate}\n"
                    "configuration: {dataset: {values: [image_folder]}, model: {values: "
                    f"[ffnn]}}, partitioning: {{values: [{', '.join(partitionings)}]}}}}\n")
    baseline, sweep = space.load(path).run(0), tmp_path / "sweep"
    for i, (partitioning, energy) in enumerate(zip(partitionings, (300.0, 100.0))):
        write_run(sweep / f"{i:03d}", {**baseline, "partitioning": partitioning},
                  energy=energy, power=100.0, acc=0.9, epochs=1)
    assert analysis.analyze(sweep)["recommendation"]["run"] == "001"
    return path, sweep


def test_final_checks_the_splits_it_trains_before_training(tmp_path):
    """`final` trains the recommendation's split and the baseline's: where the image folder
    changed since the sweep so that one of them no longer splits, it stops before any run
    with the check's error, naming that split and whose it is, not in a run."""
    from greenscreen_pipeline.final import final_run

    folder = images(tmp_path / "data", classes=("cat", "dog"), per_class=10)
    for gone in range(6):  # the dog class: 4 images, too few for 80-10-10, not for 34-33-33
        (folder / "dog" / f"{gone}.png").unlink()
    for first, whose in (("80-10-10", r"the baseline \(run 000's configuration\)"),
                         ("34-33-33", r"the recommendation \(run 001's configuration\)")):
        other = "34-33-33" if first == "80-10-10" else "80-10-10"
        where = tmp_path / first
        where.mkdir()
        path, sweep = sweep_of_two(where, folder, [first, other])
        with pytest.raises(ConfigError, match="large enough for the stratified 80-10-10 split "
                                              f"the final runs of {whose} make"):
            final_run(space.load(path), sweep)
        assert not (sweep / "final").exists()  # nothing trained, no folder made
    # A partitioning your own loop did not read is "n/a" in parameters.yaml: no split.
    from greenscreen_pipeline.datapath import check_final_splits

    check_final_splits(space.load(path), {"run 001's": {"dataset": "image_folder",
                                                        "partitioning": "n/a"}})


def test_a_class_smaller_than_the_rule_of_thumb_that_still_splits_passes(tmp_path):
    """A large folder's small class that splits is kept: only a split that fails is refused
    (200 + 8 images split 80-10-10; 200 + 5 do not)."""
    folder = images(tmp_path / "data", classes=("cat", "dog"), per_class=8)
    for extra in range(200):
        Image.new("RGB", (4, 4)).save(folder / "cat" / f"more{extra}.png")
    space.check_data_path(space.load(config(tmp_path, str(folder), "image_folder")))


def test_an_empty_image_folder_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    message = refused(tmp_path, tmp_path / "data", "image_folder")
    assert "one subfolder per class" in message


def test_class_folders_without_images_are_refused(tmp_path):
    folder = images(tmp_path / "data", per_class=0)
    (folder / "cat" / "notes.txt").write_text("not an image")
    (folder / "dog" / ".hidden.png").write_bytes(b"")
    message = refused(tmp_path, folder, "image_folder")
    assert f"class folder {folder / 'cat'} holds no images" in message


def test_one_class_folder_without_images_is_refused_naming_it(tmp_path):
    folder = images(tmp_path / "data")
    (folder / "bird").mkdir()
    message = refused(tmp_path, folder, "image_folder")
    assert f"class folder {folder / 'bird'} holds no images" in message


def test_images_without_class_folders_are_refused(tmp_path):
    folder = images(tmp_path / "data", classes=())
    Image.new("RGB", (4, 4)).save(folder / "a.png")
    assert "one subfolder per class" in refused(tmp_path, folder, "image_folder")


def test_a_class_folder_that_cannot_be_listed_is_refused_not_a_traceback(tmp_path,
                                                                         monkeypatch):
    folder = images(tmp_path / "data")
    listing = Path.iterdir

    def denied(self):
        if self.name == "dog":
            raise PermissionError(13, "Permission denied", str(self))
        return listing(self)

    monkeypatch.setattr(Path, "iterdir", denied)
    message = refused(tmp_path, folder, "image_folder")
    assert f"here: {folder / 'dog'} cannot be read (Permission denied)" in message


def test_an_image_folder_of_one_class_is_refused(tmp_path):
    folder = images(tmp_path / "data", classes=("cat",))
    with pytest.raises(DatasetError):  # what every run would meet (it trained to 1.0)
        image_folder(str(folder), 8)
    assert "holds one class folder (cat); a classifier needs two or more" in refused(
        tmp_path, folder, "image_folder")


def test_the_check_and_the_loader_list_the_same_images(tmp_path):
    folder = images(tmp_path / "data", classes=("a", "b", "c"), per_class=10)
    (folder / ".ipynb_checkpoints").mkdir()  # hidden: not a class
    files, labels = image_folder(str(folder), 8)
    assert len(files) == 30 and sorted(set(labels.tolist())) == [0, 1, 2]
    space.check_data_path(space.load(config(tmp_path, str(folder), "image_folder")))


# the command, its cost


def test_check_refuses_the_folder_once_with_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    path = config(tmp_path, "data", "image_folder")
    assert main(["check", "--config", path, "--no-probe"]) == 2
    err = capsys.readouterr().err
    assert "settings.data_path: got 'data'" in err and "one subfolder per class" in err


def test_the_check_imports_no_backend(tmp_path):
    folder = cifar(tmp_path / "data")
    code = ("import sys\n"
            "from greenscreen_pipeline import space\n"
            f"space.check_data_path(space.load({config(tmp_path, str(folder), 'cifar10_dir')!r}))\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_batch_of_the_wrong_width_is_refused(tmp_path):
    folder = cifar(tmp_path / "data")
    batch = {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]}
    (folder / "data_batch_4").write_bytes(pickle.dumps(batch, protocol=2))
    assert "data_batch_4: b'data' has 1024 columns, expected 3072" in refused(
        tmp_path, folder, "cifar10_dir")


# boolean dimensions


@pytest.mark.parametrize("given", ["1", "0", "1.0", "'true'", "None"])
def test_a_boolean_dimension_refuses_what_is_not_true_or_false(tmp_path, given):
    path = tmp_path / "config.yaml"
    path.write_text(f"configuration: {{resnet_shortcuts: {{values: [true, {given}]}}}}\n")
    with pytest.raises(ConfigError) as err:
        space.load(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: configuration.resnet_shortcuts.values[1]: got ")
    assert "allowed: true or false" in message


def test_a_boolean_dimension_takes_true_and_false(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("configuration: {resnet_shortcuts: {values: [false, true]}}\n")
    assert space.load(str(path)).space["resnet_shortcuts"] == [False, True]


def test_a_named_choice_refuses_a_boolean_or_number_equal_to_it(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("configuration: {preprocessing: {values: [None, 1]}}\n")
    with pytest.raises(ConfigError, match=r"preprocessing\.values\[1\]: got 1; allowed: one of"):
        space.load(str(path))
