"""Every sweep option builds a model that trains one step, and every data format loads."""

import math
import pickle
from pathlib import Path

import keras
import numpy as np
import pytest

from greenscreen_pipeline import space
from greenscreen_pipeline.run import batches, data, models
from greenscreen_pipeline.run import recipe as t
from greenscreen_pipeline.run.training import build_model

OPTIONS = [(dim, value) for dim, values in space.CHOICES.items() if dim != "dataset"
           for value in values]
OPTIONS += [("batch_size", 4), ("partitioning", "60-20-20"), ("optimizer_momentum", 0.0),
            ("resnet_depth", 1), ("resnet_width", 8)]


@pytest.fixture(scope="module")
def digits():
    x, y = data.load("digits")
    return x[:200], y[:200]


def one_step(cfg, x, y):
    dtype = t.set_precision(cfg["precision"])
    try:
        splits = data.preprocess(data.split(x, y, cfg["partitioning"], 0), cfg["preprocessing"])
        train_ds, _, test_ds = batches.datasets(splits, cfg, dtype, 0)
        built = build_model(cfg, splits, epochs=1)
        model, n_params, flops = built.model, built.n_parameters, built.flops_per_train_step
        # The ImageNet-style models take their one step eagerly: tracing ResNet-50's train
        # step takes ~20 s on two cores (eagerly: ~2.6 s) and tests Keras's tracing, which
        # every other model here still goes through.
        model.run_eagerly = ("model", cfg["model"]) in HEAVY
        history = model.fit(train_ds, epochs=1, steps_per_epoch=1, verbose=0)
        extra = t.post_quantize(model, test_ds) if cfg["internal"] == "post_quantization" else {}
        return history, n_params, flops, extra
    finally:
        t.set_precision("float32")


# Under JAX the options that reach backend code run again: precision, XLA,
# quantization, methods, augmentation, models, optimizers. The large
# ImageNet-style models (15-45 s each under JAX on 2 cores) and the options that
# are plain NumPy or Keras bookkeeping (splits, preprocessing, batch size,
# learning rate) are left to the TensorFlow pass, to keep the suite short.
JAX_DIMS = {"precision", "internal", "method", "augmentation", "model", "optimizer",
            "resnet_shortcuts"}
HEAVY = {("model", m) for m in ("resnet18", "resnet50", "vgg19", "alexnet")}


def _backends(dim, value):
    return ("tensorflow", "jax") if dim in JAX_DIMS and (dim, value) not in HEAVY else (
        "tensorflow",)


PARAMS = [pytest.param(d, v, id=f"{d}={v}", marks=pytest.mark.backends(*_backends(d, v)))
          for d, v in OPTIONS]


@pytest.mark.parametrize("dim, value", PARAMS)
def test_each_option_trains_one_step(digits, dim, value):
    cfg = {**space.BASELINE, dim: value}
    if dim.startswith("resnet_"):
        cfg["model"] = "resnet"
    if t.skip_reason(cfg):
        pytest.skip(t.skip_reason(cfg))
    history, n_params, flops, extra = one_step(cfg, *digits)
    assert len(history.history["loss"]) == 1
    assert n_params > 0 and flops > 0
    if dim == "internal" and value == "post_quantization":
        assert 0 <= extra["quantized_test_accuracy"] <= 1
        assert extra["weights_bytes_int8"] < extra["weights_bytes_float"]


@pytest.mark.backends("tensorflow", "jax")
def test_impossible_combinations_are_skipped_with_a_reason():
    # Gating trains a fixed-size sub-batch, so XLA compiles it on every backend.
    assert t.skip_reason({**space.BASELINE, "method": "gated", "internal": "jit_compilation"}) \
        is None
    reason = t.skip_reason({**space.BASELINE, "method": "gated", "internal": "pre_quantization"})
    assert "float8" in reason
    weight = t.skip_reason({**space.BASELINE, "method": "ranked", "ranked_freeze": "bottom_up",
                            "ranked_granularity": "weight"})
    assert weight.startswith("ranked_freeze bottom_up with ranked_granularity weight: ")
    assert "allowed: granularity='layer'" in weight
    random = t.skip_reason({**space.BASELINE, "method": "gated", "gating_scoring": "stale",
                            "gating_selector": "random"})
    assert random.startswith("gating_scoring stale with gating_selector random: ")
    assert "allowed: selector='significance'" in random
    assert t.skip_reason({**space.BASELINE, "gating_scoring": "stale",
                          "gating_selector": "random"}) is None  # a standard run ignores both
    float64 = t.skip_reason({**space.BASELINE, "precision": "float64"})
    scaled = t.skip_reason({**space.BASELINE, "precision": "global_policy_float16",
                            "method": "pruned"})
    if keras.backend.backend() == "jax":
        assert ("JAX_ENABLE_X64=1" in float64) != t.jax_x64()
        assert "LossScaleOptimizer" in scaled
    else:
        assert float64 is None and scaled is None


@pytest.mark.backends("torch")
@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_on_pytorch_a_blending_augmentation_in_float16_is_skipped_with_the_reason(kind):
    import torch

    reason = t.skip_reason({**space.BASELINE, "augmentation": kind, "precision": "float16"})
    if torch.cuda.is_available():  # CUDA's Dirichlet sampler has float16
        assert reason is None
        return
    assert reason.startswith(f"augmentation {kind} with precision float16 on PyTorch's CPU: ")
    for precision in ("float32", "global_policy_float16"):  # computed in float32: it runs
        assert t.skip_reason({**space.BASELINE, "augmentation": kind,
                              "precision": precision}) is None
    x = np.zeros((4, 8, 8, 1), "float16")
    dtype = t.set_precision("float16")
    try:  # the rule holds while PyTorch lacks the kernel
        with pytest.raises(NotImplementedError, match="dirichlet"):
            batches.augmenter(kind, 0, dtype)(x, np.eye(10, dtype="float16")[:4], 0)
    finally:
        t.set_precision("float32")


@pytest.mark.backends("tensorflow", "jax")
def test_augmented_batches_are_seeded_shuffled_and_in_the_training_dtype(digits):
    x, y = digits
    splits = data.split(x, y, "80-10-10", 0)
    cfg = {**space.BASELINE, "augmentation": "mixup", "batch_size": 16}
    first, _, test = batches.datasets(splits, cfg, "float16", seed=3)
    again, _, _ = batches.datasets(splits, cfg, "float16", seed=3)
    bx, by = first[0]
    assert bx.dtype == np.float16 and by.shape == (16, 10) and len(first) == 10
    np.testing.assert_array_equal(bx, again[0][0])  # a function of the seed
    assert np.allclose(by.astype("float32").sum(axis=1), 1, atol=1e-2)  # mixed one-hot labels
    again[3]  # a later batch asked for first (a peek, a thread) changes nothing
    np.testing.assert_array_equal(first[1][0], again[1][0])
    order = first.order.copy()
    first.on_epoch_end()
    assert not np.array_equal(order, first.order)  # reshuffled every epoch
    again.start_at(1)  # a run resumed at epoch 1: that epoch's order and draws
    np.testing.assert_array_equal(again.order, first.order)
    np.testing.assert_array_equal(again[2][0], first[2][0])
    with pytest.raises(ValueError, match="allowed: >= 1"):
        again.start_at(0)
    np.testing.assert_array_equal(test[0][0], splits.x_test[:16])  # evaluation: in order


@pytest.mark.backends("jax")
@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_on_jax_a_blending_augmentation_draws_what_the_keras_layer_draws(kind):
    """On JAX, MixUp and CutMix run as one compiled program per batch shape (an eager call
    compiles each operation for each shape), one per worker process for every run: batch
    after batch, a shorter last one among them, the same images and labels as the Keras
    layer called eagerly with the same seed, its seed state carried from one batch to the
    next, whichever run's layer the program was first made from."""
    cls = keras.layers.MixUp if kind == "mixup" else keras.layers.CutMix
    earlier = batches.augmenter(kind, 123, "float32")  # an earlier run of the worker
    earlier(np.zeros((4, 8, 8, 1), "float32"), np.eye(10, dtype="float32")[:4], 0)
    assert any(key[0] == cls.__name__ for key in batches.PROGRAMS)  # the compiled path
    augment = batches.augmenter(kind, 7, "float32")
    layer = cls(seed=7, dtype="float32")
    rng = np.random.default_rng(0)
    for batch, n in enumerate((16, 16, 5, 16)):
        x = rng.random((n, 8, 8, 1), dtype=np.float32)
        y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
        got = augment(x, y, batch)
        state = layer.generator.state
        state.assign(batches.seed_state(7, batch, 0, state.dtype))  # the batch's own
        want = layer({"images": x, "labels": y}, training=True)
        np.testing.assert_allclose(got[0], keras.ops.convert_to_numpy(want["images"]),
                                   atol=1e-6)
        np.testing.assert_allclose(got[1], keras.ops.convert_to_numpy(want["labels"]),
                                   atol=1e-6)


@pytest.mark.backends("tensorflow", "jax")
@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_a_regression_s_targets_are_mixed_sample_by_sample(kind):
    """One target per sample, shape (batch,): Keras mixes labels of shape (batch, n), and
    made a (batch, batch) matrix of them, which failed the run's loss. Each mixed target
    lies between two of the batch's targets, as a one-column label mixes."""
    rng = np.random.default_rng(0)
    x = rng.random((8, 8, 8, 1), dtype=np.float32)
    y = rng.random(8, dtype=np.float32) * 10
    images, targets = batches.augmenter(kind, 5, "float32")(x, y, 0)
    column = batches.augmenter(kind, 5, "float32")(x, y[:, None], 0)[1]
    assert targets.shape == (8,) and images.shape == x.shape
    np.testing.assert_allclose(targets, column.ravel(), atol=1e-6)
    assert ((targets >= y.min() - 1e-5) & (targets <= y.max() + 1e-5)).all()


@pytest.mark.backends("tensorflow", "jax")
@pytest.mark.parametrize("kind", ["mixup", "cutmix", "random"])
def test_batches_augmented_from_several_reader_threads_draw_what_one_thread_draws(kind):
    """Batches augmented from several threads at once, in whichever order they get to
    them: each batch draws its own numbers (two threads reading the same seed state would
    augment two batches alike), and the same ones as when one thread takes the batches in
    order, so a run is a function of its seed however its batches are asked for."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]

    def images_and_labels(augment, batch):
        out = augment(x, y, batch)
        return out[0].tobytes() + out[1].tobytes()

    in_order = batches.augmenter(kind, 3, "float32")
    one_thread = [images_and_labels(in_order, b) for b in range(120)]
    threaded = batches.augmenter(kind, 3, "float32")
    backwards = list(range(120))[::-1]  # the threads start from the last batch
    with ThreadPoolExecutor(4) as pool:
        draws = dict(zip(backwards, pool.map(lambda b: images_and_labels(threaded, b),
                                             backwards)))
    assert [draws[b] for b in range(120)] == one_thread
    assert len(set(one_thread)) == len(one_thread)


@pytest.mark.backends("tensorflow", "jax")
@pytest.mark.parametrize("internal", ["None", "jit_compilation"])
def test_a_run_trains_with_its_backend_s_compiled_step(digits, internal, caplog):
    """On JAX every run's train step is one jax.jit program (Keras's jit_compile=False
    would run each operation eagerly, compiling each one for each shape); on TensorFlow
    only internal: jit_compilation turns XLA on."""
    cfg = {**space.BASELINE, "internal": internal}
    x, y = digits
    splits = data.preprocess(data.split(x, y, cfg["partitioning"], 0), cfg["preprocessing"])
    train_ds, _, _ = batches.datasets(splits, cfg, "float32", 0)
    model = build_model(cfg, splits, epochs=1).model
    on_jax = keras.backend.backend() == "jax"
    assert model.jit_compile is (on_jax or internal == "jit_compilation")
    if on_jax:
        import jax

        with jax.log_compiles(True), caplog.at_level("WARNING"):
            model.fit(train_ds, epochs=1, steps_per_epoch=2, verbose=0)
        compiled = [r.getMessage() for r in caplog.records if "XLA compilation" in r.getMessage()]
        assert any("jit(train_step)" in m for m in compiled), compiled
        assert not any("jit(matmul)" in m for m in compiled), compiled  # not op by op



class NotesHowItPredicts(keras.Sequential):
    """Records, each time its predict step is traced, whether it was compiled with XLA and
    the batch's rows."""

    traced: list = []

    def predict_step(self, *args):  # (data), or (state, data) on JAX
        x = args[-1][0] if isinstance(args[-1], tuple) else args[-1]
        self.traced.append((bool(self.jit_compile), x.shape[0]))
        return super().predict_step(*args)


def _notes_how_it_predicts(jit: bool) -> NotesHowItPredicts:
    NotesHowItPredicts.traced = []
    model = NotesHowItPredicts([keras.Input((64,)), keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", jit_compile=jit)
    return model


@pytest.mark.backends("tensorflow")
def test_the_confusion_matrix_of_an_xla_run_compiles_no_xla_program(digits):
    """`internal: jit_compilation` trains with XLA; the confusion matrix's one pass over
    the test split does not compile an XLA program for itself (0.5 s a run here), gives the
    same counts, and leaves the model as it trained."""
    x, y = digits
    rows = x.reshape(len(x), -1).astype("float32")
    model = _notes_how_it_predicts(jit=True)
    test = batches.ArrayBatches(rows, y, 10, 32, "float32", one_hot=False)
    counts = np.array(t.confusion_matrix(model, test, 10))
    assert model.traced and not any(xla for xla, _ in model.traced)
    predicted = np.argmax(keras.ops.convert_to_numpy(model(rows)), axis=-1)
    assert counts.sum() == len(y) and counts.trace() == int((predicted == y).sum())
    assert model.jit_compile is True and model.predict_function is None


@pytest.mark.backends("tensorflow", "jax")
def test_the_confusion_matrix_runs_one_program_for_every_batch(digits):
    """The test split's last, shorter batch is padded to the others' size, so its pass
    traces and compiles one program, not a second for the last batch (0.1 to 1 s a run
    on JAX); the padding's rows are not counted."""
    x, y = digits
    rows = x.reshape(len(x), -1).astype("float32")[:100]  # 3 batches of 32 and one of 4
    model = _notes_how_it_predicts(jit=keras.backend.backend() == "jax")
    counts = np.array(t.confusion_matrix(
        model, batches.ArrayBatches(rows, y[:100], 10, 32, "float32", one_hot=False), 10))
    assert [n for _, n in model.traced] == [32]
    predicted = np.argmax(keras.ops.convert_to_numpy(model(rows)), axis=-1)
    assert counts.sum() == 100 and counts.trace() == int((predicted == y[:100]).sum())


@pytest.mark.backends("tensorflow")
def test_the_confusion_matrix_pads_text_batches_with_a_row_of_theirs():
    """A review: padding with zeros put the integer 0 among a text batch's strings, and
    TensorFlow refused the batch after the run had trained; a text model's confusion
    matrix worked before the padding."""
    import tensorflow as tf

    texts = np.array(["good", "bad", "good day", "bad day", "good", "bad", "day", "good",
                      "bad", "good"], dtype=object)
    labels = np.array([1, 0, 1, 0, 1, 0, 1, 1, 0, 1])
    assert t.padded(texts[:2], 4).tolist() == ["good", "bad", "bad", "bad"]
    words = keras.layers.TextVectorization(max_tokens=10, output_mode="count")
    words.adapt(texts)
    inputs = keras.Input((), dtype="string")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(words(inputs)))
    split = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(4)  # 4, 4 and 2
    counts = np.array(t.confusion_matrix(model, split, 2))
    assert counts.sum() == 10

def test_resnet_shortcut_flag_changes_the_graph():
    with_sc = models.build("resnet", (8, 8, 1), 10, {"resnet_depth": 1, "resnet_width": 8})
    without = models.build("resnet", (8, 8, 1), 10, {"resnet_depth": 1, "resnet_width": 8,
                                                      "resnet_shortcuts": False})
    assert any(isinstance(layer, keras.layers.Add) for layer in with_sc.layers)
    assert not any(isinstance(layer, keras.layers.Add) for layer in without.layers)


def test_flops_of_a_dense_model_are_analytic():
    model = models.build("ffnn", (8, 8, 1), 10, {})
    assert models.forward_flops(model) == 2 * (64 * 128 + 128 * 64 + 64 * 10)
    assert models.train_step_flops(model, 32) == 3 * 32 * models.forward_flops(model)


def test_splits_are_stratified_and_seeded(digits):
    x, y = digits
    a, b = data.split(x, y, "60-20-20", 5), data.split(x, y, "60-20-20", 5)
    assert np.array_equal(a.y_test, b.y_test)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (120, 40, 40)
    assert abs(np.bincount(a.y_val, minlength=10) - np.bincount(a.y_test, minlength=10)).max() <= 1


def test_preprocessing_uses_training_statistics_only(digits):
    x, y = digits
    splits = data.split(x, y, "80-10-10", 0)
    out = data.preprocess(splits, "standardization")
    mean = splits.x_train.mean(axis=0)
    assert np.allclose(out.x_train.mean(axis=0), 0, atol=1e-5)
    std = np.where(splits.x_train.std(axis=0) > 1e-8, splits.x_train.std(axis=0), 1)
    assert np.allclose(out.x_test, (splits.x_test - mean) / std, atol=1e-5)


@pytest.mark.parametrize("method", ["minmax", "robust_scaling", "standardization"])
@pytest.mark.parametrize("dtype", ["uint8", "int8", "bool"])
def test_integer_and_boolean_inputs_are_preprocessed_as_numbers(method, dtype):
    """Your dataset function's uint8 images: minmax kept the training minimum and range
    as integers, so a validation 0 below the minimum 10 wrapped to 246 (2.46 for -0.1),
    int8's range overflowed, and bool inputs failed in NumPy with no setting named."""
    values = {"uint8": [10, 20, 110, 0, 5, 30], "int8": [-100, 0, 100, -110, 50, 120],
              "bool": [0, 1, 1, 0, 1, 0]}[dtype]
    def splits_of(x):
        return data.Splits(x[:3], np.zeros(3, int), x[3:5], np.zeros(2, int), x[5:],
                           np.zeros(1, int), 1)

    x = np.array(values, dtype=dtype).reshape(6, 1)
    out = data.preprocess(splits_of(x), method)
    real = data.preprocess(splits_of(x.astype("float64")), method)
    for got, want in zip((out.x_train, out.x_val, out.x_test),
                         (real.x_train, real.x_val, real.x_test)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    if dtype == "uint8" and method == "minmax":
        np.testing.assert_allclose(out.x_val.ravel(), [-0.1, -0.05], rtol=1e-6)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_cifar10_pickle_folder_loads(tmp_path, protocol):
    """Batches in CIFAR-10's layout load through the restricted unpickler."""
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"filenames": [b"a.png"] * 4,
                 b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 b"labels": [int(v) for v in rng.integers(0, 10, 4)]}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    x, y = data.load("cifar10_dir", str(tmp_path))
    assert x.shape == (24, 32, 32, 3) and y.shape == (24,) and 0 <= x.min() and x.max() <= 1


def _cifar_batches(folder: Path, names, labels: bytes = b"labels", classes: int = 10,
                   bad: int | None = None) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        values = [int(v) for v in rng.integers(0, classes, 4)]
        if bad is not None and name == names[1]:
            values[0] = bad
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), labels: values}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))


CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


@pytest.mark.parametrize("bad", [-1, 10])
def test_cifar10_labels_outside_its_classes_are_one_error_naming_the_file(tmp_path, bad):
    """A -1 became the last class (one-hot) and a 10 an eleventh, silently."""
    _cifar_batches(tmp_path / "c", CIFAR10_BATCHES, bad=bad)
    with pytest.raises(data.DataError, match=rf"data_batch_2: 1 label\(s\) outside 0..9 "
                                             rf"\({bad}\)"):
        data.load("cifar10_dir", str(tmp_path / "c"))


@pytest.mark.parametrize("name, layout", [
    ("cifar10", "cifar-10-batches-py-target/cifar-10-batches-py"),  # Keras 3.15's
    ("cifar10", "cifar-10-batches-py"),  # older Keras's
    ("cifar100", "cifar-100-python-target/cifar-100-python")])
def test_a_cached_cifar_is_read_here_in_either_layout_and_nothing_is_downloaded(
        tmp_path, monkeypatch, name, layout):
    """The check looked for cifar-10-batches-py where Keras 3.15 caches it inside
    cifar-10-batches-py-target: a cache Keras wrote was "not cached", and a folder in the
    old layout passed the check, after which Keras went to download the archive."""
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(urllib.request, "urlretrieve", no_network)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    names, labels, classes = ((CIFAR10_BATCHES, b"labels", 10) if name == "cifar10"
                              else (["train", "test"], b"fine_labels", 100))
    _cifar_batches(tmp_path / "datasets" / layout, names, labels, classes)
    assert data.cached(name) == tmp_path / "datasets" / layout
    x, y = data.load(name)
    assert x.shape == (4 * len(names), 32, 32, 3) and 0 <= y.min() and y.max() < classes


def test_check_refuses_a_keras_dataset_this_machine_does_not_hold(tmp_path, monkeypatch):
    """`check` said the config was valid; every run then failed "not cached"."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    config = tmp_path / "config.yaml"
    config.write_text("configuration:\n  dataset: {values: [digits, mnist]}\n")
    with pytest.raises(space.ConfigError, match=r"configuration.dataset.values\[1\]: got "
                                                r"'mnist'.*not cached in"):
        space.check_data_path(space.load(config))


def test_cifar10_batch_that_would_run_code_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"

    class Payload:  # unpickling calls open(marker, "w"): a file appears if code runs
        def __reduce__(self):
            return (open, (str(marker), "w"))

    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 b"labels": list(rng.integers(0, 10, 4))}
        if name == "data_batch_3":
            batch[b"batch_label"] = Payload()
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(data.DataError, match=r"data_batch_3 is not a plain CIFAR-10 batch: "
                                             r"it asks to load io.open"):
        data.load("cifar10_dir", str(tmp_path))
    assert not marker.exists()


def test_cifar10_folder_missing_files_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataError, match="not a CIFAR-10 python folder"):
        data.load("cifar10_dir", str(tmp_path))


def image_tree(root, per_class=3):
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir()
        for i in range(per_class):
            keras.utils.save_img(root / label / f"{i}.png",
                                 rng.integers(0, 256, (20, 24, 3)).astype("uint8"))


def test_image_folder_loads_through_keras(tmp_path):
    image_tree(tmp_path)
    x, y = data.load("image_folder", str(tmp_path), image_size=16)
    assert x.shape == (6, 16, 16, 3) and sorted(set(y.tolist())) == [0, 1]
    images = x[:]
    assert images.shape == (6, 16, 16, 3) and 0 <= images.min() and images.max() <= 1


@pytest.mark.backends("tensorflow", "jax")
def test_image_folder_streams_batches_from_disk(tmp_path):
    """Only the files of the batch asked for are read: the folder never has to fit in memory."""
    image_tree(tmp_path, per_class=10)
    x, y = data.load("image_folder", str(tmp_path), image_size=16)
    splits = data.preprocess(data.split(x, y, "60-20-20", 0), "standardization")
    cfg = {**space.BASELINE, "batch_size": 4}
    train_ds, val_ds, test_ds = batches.datasets(splits, cfg, "float32", seed=0)
    first_rows = set(train_ds.order[:4].tolist())
    outside = next(i for i in range(len(splits.x_train)) if i not in first_rows)
    splits.x_train.paths[outside].unlink()  # a file no batch-0 row needs
    bx, by = train_ds[0]
    assert bx.shape == (4, 16, 16, 3) and by.shape == (4, 2)
    assert abs(float(bx.mean())) < 1.5  # standardised with training-sample statistics
    with pytest.raises(FileNotFoundError):
        splits.x_train[[outside]]
    model = build_model({**cfg, "model": "ffnn"}, splits, epochs=1).model
    model.fit(val_ds, epochs=1, verbose=0)  # a model trains and evaluates on streamed batches
    assert 0 <= model.evaluate(test_ds, verbose=0)[1] <= 1


def test_an_augmented_image_folder_run_is_a_function_of_its_seed(tmp_path):
    """An image folder's run trained twice with the same seed ends with the same weights
    (before, the draws followed the order Keras's four reader threads took the batches
    in: the weights differed by up to 0.025)."""
    kind = "mixup"  # "random"'s three layers: the reader-threads test above
    image_tree(tmp_path, per_class=40)
    x, y = data.load("image_folder", str(tmp_path), image_size=16)
    splits = data.preprocess(data.split(x, y, "60-20-20", 0), "standardization")
    cfg = {**space.BASELINE, "batch_size": 4, "augmentation": kind, "model": "ffnn"}

    def weights():
        keras.utils.set_random_seed(0)
        train_ds, _, _ = batches.datasets(splits, cfg, "float32", seed=0)
        model = build_model(cfg, splits, epochs=2).model
        model.fit(train_ds, epochs=2, verbose=0, shuffle=False)
        return np.concatenate([w.ravel() for w in model.get_weights()])

    np.testing.assert_array_equal(weights(), weights())


@pytest.mark.backends("tensorflow", "jax")
def test_an_image_folder_trains_each_image_once_an_epoch_in_a_seeded_order(tmp_path):
    """Each fit epoch trains every image once, in an order that is a function of the seed
    (Keras's reader threads, used before, read ahead across an epoch's end: an epoch
    mixed two shuffles, some images twice and others not, different ones each time)."""
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
    for i in range(40):  # image i is one grey level, 3 x i: it says which image it is
        keras.utils.save_img(tmp_path / ("cat", "dog")[i % 2] / f"{i}.png",
                             np.full((8, 8, 3), 3 * i, dtype="uint8"), scale=False)
    x, y = data.load("image_folder", str(tmp_path), image_size=8)

    def trained(seed):
        seen = []

        class Record(keras.layers.Layer):
            def call(self, inputs, training=None):
                if training:
                    grey = keras.ops.convert_to_numpy(inputs)[:, 0, 0, 0]
                    seen.extend(np.rint(grey * 255 / 3).astype(int).tolist())
                return inputs

        model = keras.Sequential([keras.Input((8, 8, 3)), Record(), keras.layers.Flatten(),
                                  keras.layers.Dense(2)])
        model.compile("sgd", "categorical_crossentropy", run_eagerly=True)
        model.fit(batches.ArrayBatches(x, y, 2, 4, "float32", shuffle_seed=seed), epochs=3,
                  verbose=0, shuffle=False)
        return [seen[e * 40:(e + 1) * 40] for e in range(3)]

    epochs = trained(seed=5)
    assert [sorted(e) for e in epochs] == [list(range(40))] * 3  # each image once an epoch
    assert epochs[0] != epochs[1] != epochs[2]  # reshuffled
    assert trained(seed=5) == epochs  # and the same again


def test_uncached_keras_dataset_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(data.DataError, match="not cached .* nothing is downloaded"):
        data.load("cifar10")


def fit_method(digits, epochs=2, **settings):
    """Two epochs of a configured method on a digits subset; its Keras history."""
    cfg = {**space.BASELINE, "batch_size": 32, "model": "ffnn", **settings}
    x, y = digits
    splits = data.split(x, y, "80-10-10", 0)
    train_ds, _, _ = batches.datasets(splits, cfg, "float32", 0)
    model = build_model(cfg, splits, epochs).model
    return model, model.fit(train_ds, epochs=epochs, verbose=0).history


@pytest.mark.backends("tensorflow", "jax")
def test_each_method_setting_changes_what_the_method_does(digits):
    """Checked on what each method logs, not only that it trained."""
    _, ranked = fit_method(digits, method="ranked", ranked_granularity="weight",
                           high_percentage=80.0, low_percentage=40.0,
                           percentage_schedule="exponential")
    assert ranked["update_fraction"] == pytest.approx([0.8, 0.8 * 0.5 ** 0.5], abs=1e-5)
    _, gated = fit_method(digits, method="gated", gating_selector="random",
                          target_activation_rate=0.1, warmup_epochs=1)
    k = math.ceil(0.1 * 32)
    assert gated["activation_rate"] == pytest.approx([1.0, k / 32])  # warm-up, then random k
    model, pruned = fit_method(digits, method="pruned", target_sparsity=0.5,
                               pruning_frequency=1.0)
    assert pruned["sparsity"][-1] == pytest.approx(0.5, abs=0.01)
    assert model.frequency == len(range(0, 160, 32))  # one mask update per epoch of 5 steps
    # A frequency of more epochs than the run has: its first mask update came after the
    # last step, and the run trained unpruned (sparsity 0.0 against a target of 0.5).
    model, pruned = fit_method(digits, method="pruned", target_sparsity=0.5,
                               pruning_frequency=3.0)
    assert pruned["sparsity"][-1] == pytest.approx(0.5, abs=0.01)


def test_a_pruning_frequency_of_any_size_prunes_within_the_run():
    """pruning_frequency 1e308 passed check, then round(inf) raised in the run."""
    from greenscreen_pipeline.run import recipe

    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    cfg = {**space.BASELINE, "method": "pruned", "pruning_frequency": 1e308}
    wrapped = recipe.wrap(cfg, net, steps_per_epoch=5, epochs=2, num_samples=160)
    assert wrapped.frequency == wrapped.end_step == 10  # once, at the run's last step


@pytest.mark.backends("tensorflow", "jax")
def test_bottom_up_freezing_and_stale_scores_run_from_the_configuration(digits):
    """ranked_freeze and gating_scoring reach the methods, and stale scoring gets its indices."""
    cfg = {**space.BASELINE, "batch_size": 32, "model": "ffnn", "method": "ranked",
           "ranked_freeze": "bottom_up", "high_percentage": 30.0, "low_percentage": 30.0}
    splits = data.split(*digits, "80-10-10", 0)
    train_ds, _, _ = batches.datasets(splits, cfg, "float32", 0)
    built = build_model(cfg, splits, epochs=1)
    model, net = built.model, built.net
    dense = [layer for layer in net.layers if isinstance(layer, keras.layers.Dense)]
    before = [keras.ops.convert_to_numpy(layer.kernel).copy() for layer in dense]
    model.fit(train_ds, epochs=1, verbose=0)
    changed = [not np.array_equal(b, keras.ops.convert_to_numpy(layer.kernel))
               for b, layer in zip(before, dense)]
    assert changed == [False, False, True]  # 30 % of 3 layers, rounded up: the top one

    cfg = {**cfg, "method": "gated", "gating_scoring": "stale", "warmup_epochs": 1}
    train_ds, _, _ = batches.datasets(splits, cfg, "float32", 0)
    (x, rows), y = train_ds[0]
    assert np.array_equal(rows, train_ds.order[:32]) and x.shape[0] == y.shape[0] == 32
    model = build_model(cfg, splits, epochs=2).model
    history = model.fit(train_ds, epochs=2, verbose=0).history
    memory = keras.ops.convert_to_numpy(model.loss_memory)
    assert memory.shape == (len(splits.x_train),) and memory.min() >= 0  # every sample scored
    n, k = len(splits.x_train), math.ceil(0.3 * 32)
    assert history["samples_trained"][0] == n  # the warm-up epoch trains every sample
    assert history["samples_trained"][1] - n <= math.ceil(n / 32) * k  # then k per batch
    plain = keras.ops.convert_to_numpy(model.predict_on_batch(x))
    assert np.allclose(keras.ops.convert_to_numpy(model.predict_on_batch((x, rows))), plain)
