"""Data inputs that are wrong get one clear error naming what and where: settings.data_path
at config validation, image folders (hidden, empty, corrupt), CIFAR batches of the wrong
shape, and a refused pickle at the cascade command line."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from PIL import Image

from greenscreen.cascade.__main__ import main as cascade_main
from greenscreen.datasets import DatasetError, image_folder, load_cifar10_dir
from greenscreen_pipeline import space
from greenscreen_pipeline.yamlload import ConfigError

CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def images(root, classes=("cat", "dog"), per_class=2):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(
                root / name / f"{i}.png")
    return root


def cifar(root, columns=3072, rows=4, labels=4, payload=None):
    root.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    for name in CIFAR_FILES:
        batch = {b"data": rng.integers(0, 256, (rows, columns), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, labels)]}
        if payload is not None and name == "test_batch":
            batch[b"batch_label"] = payload
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


def config(tmp_path, data_path, dataset="image_folder"):
    path = tmp_path / "config.yaml"
    path.write_text(f"settings: {{data_path: {data_path!r}}}\n"
                    f"configuration: {{dataset: {{values: [digits, {dataset}]}}}}\n")
    return str(path)


@pytest.mark.parametrize("dataset", ["image_folder", "cifar10_dir"])
def test_missing_data_path_is_refused_at_validation_with_a_near_name(tmp_path, monkeypatch,
                                                                      dataset):
    monkeypatch.chdir(tmp_path)  # the runs read a relative data_path from here
    images(tmp_path / "data")
    with pytest.raises(ConfigError, match=r"settings\.data_path: got 'dat'.*"
                                          r"no such folder.*did you mean 'data'\?"):
        space.check_data_path(space.load(config(tmp_path, "dat", dataset)))


def test_analyze_and_report_read_a_sweep_whose_data_has_moved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space.load(config(tmp_path, "gone"))  # what analyze and report load: no error
    from greenscreen_pipeline import commands

    assert "analyze" not in commands.TRAINS and "report" not in commands.TRAINS
    assert {"check", "sweep", "final", "all", "run-one"} <= set(commands.TRAINS)


def test_data_path_that_is_a_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"settings\.data_path: got 'config\.yaml'.*"
                                          r"a file, not a folder"):
        space.check_data_path(space.load(config(tmp_path, "config.yaml")))


def test_data_path_is_resolved_from_the_folder_the_sweep_starts_in(tmp_path, monkeypatch):
    images(tmp_path / "data", per_class=10)  # the least the default 80-10-10 split takes
    monkeypatch.chdir(tmp_path)
    space.check_data_path(space.load(config(tmp_path, "data")))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="settings.data_path.*no such folder"):
        space.check_data_path(space.load(config(tmp_path, "data")))


def test_data_path_is_not_needed_without_a_file_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.yaml"
    path.write_text("settings: {data_path: nowhere}\n"
                    "configuration: {dataset: {values: [digits]}}\n")
    space.check_data_path(space.load(str(path)))  # nothing to read there: no error


def test_image_folder_ignores_hidden_folders_and_files(tmp_path):
    root = images(tmp_path / "data")
    (root / ".ipynb_checkpoints").mkdir()
    Image.new("RGB", (4, 4)).save(root / ".ipynb_checkpoints" / "x.png")
    (root / "cat" / "._0.png").write_bytes(b"macOS resource fork, not an image")
    files, labels = image_folder(str(root), 8)
    assert sorted(set(labels.tolist())) == [0, 1] and len(files) == 4
    assert all(p.parent.name in ("cat", "dog") and p.name[0] != "." for p in files.paths)


def test_image_folder_refuses_an_empty_class_folder_naming_it(tmp_path):
    root = images(tmp_path / "data")
    (root / "bird").mkdir()
    with pytest.raises(DatasetError, match=r"class folder .*bird holds no images"):
        image_folder(str(root), 8)


def test_a_corrupt_image_names_its_file(tmp_path):
    root = images(tmp_path / "data")
    bad = root / "dog" / "9.png"
    bad.write_text("not an image")
    files, _ = image_folder(str(root), 8)
    assert files[[0]].shape == (1, 8, 8, 3)  # the good ones still decode
    with pytest.raises(DatasetError) as err:
        files[:]
    message = str(err.value)
    assert message.startswith(f"{bad} cannot be read as an image (PIL: cannot identify image "
                              "file)") and "\n" not in message and "_io." not in message


def test_a_16_bit_image_is_refused_not_clipped_to_white(tmp_path):
    """PIL's RGB conversion clipped a 16-bit PNG's values at 255: 99 of 100 pixels white."""
    root = images(tmp_path / "data")
    wide = root / "dog" / "wide.png"
    Image.fromarray(np.arange(100, dtype=np.uint16).reshape(10, 10) * 600).save(wide)
    assert Image.open(wide).mode.startswith("I;16")
    files, _ = image_folder(str(root), 8)
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(wide))} has 16-bit pixels "
                                           r"\(PIL mode I;16"):
        files[:]


def test_an_image_too_large_for_pil_names_its_file(tmp_path, monkeypatch):
    """PIL's DecompressionBombError is no OSError: the error named no file."""
    root = images(tmp_path / "data")
    big = root / "cat" / "big.png"
    Image.new("RGB", (40, 40)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 40 x 40 is over twice as many
    files, _ = image_folder(str(root), 8)
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(big))} cannot be read as an "
                                           r"image \(PIL: Image size"):
        files[:]


def test_cifar_batch_of_the_wrong_width_says_so(tmp_path):
    folder = cifar(tmp_path / "wrong", columns=1024, rows=30, labels=30)
    with pytest.raises(DatasetError, match=r"data_batch_1: b'data' has 1024 columns, "
                                           r"expected 3072 \(3 x 32 x 32\); 30 labels"):
        load_cifar10_dir(str(folder))


def test_cifar_batch_with_more_labels_than_images_says_so(tmp_path):
    folder = cifar(tmp_path / "wrong", rows=3, labels=4)
    with pytest.raises(DatasetError, match=r"data_batch_1: b'data' has 3 rows \(images\) but "
                                           r"there are 4 labels"):
        load_cifar10_dir(str(folder))


class Payload:  # unpickling calls open(marker, "w"): a file appears if code runs
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_cascade_refused_pickle_is_one_error_line_and_exit_2(tmp_path, capsys):
    marker = tmp_path / "marker"
    folder = cifar(tmp_path / "evil", payload=Payload(marker))
    assert cascade_main(["run", "--filepath", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert not marker.exists()
    assert "\n" not in err and "Traceback" not in err
    assert err.startswith(f"greenscreen.cascade: {folder / 'test_batch'} is not a plain "
                          "CIFAR-10 batch: it asks to load io.open")
