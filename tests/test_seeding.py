"""A run is seeded as keras.utils.set_random_seed seeds it, without importing TensorFlow for it."""

import json
import os
import subprocess
import sys

import pytest
from test_workers import train

from greenscreen_pipeline.executors.workers import WorkerSlot

# In a fresh JAX process: a model saved as the final run saves it; a run seeded after an
# earlier run's seeding; TensorFlow imported by "its own code" afterwards and drawn from;
# a second run with the same seed, now that TensorFlow is loaded (a warm worker's later
# run); then Keras's own set_random_seed, the reference.
SCRIPT = r"""
import json, random, sys
import keras
import numpy as np
from keras.src.utils import rng_utils
from greenscreen_pipeline.run import lazy_tensorflow, seeding

model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
with lazy_tensorflow.left_out():
    model.save(sys.argv[1])
seeding.seed_run(3)  # an earlier run's seed, which the hook must not keep
seeding.seed_run(7)
imported_by_us = "tensorflow" in sys.modules
import tensorflow as tf

def draw():
    return [random.random(), float(np.random.rand()), tf.random.uniform([3]).numpy().tolist()]

first = draw()
seeding.seed_run(7)
later = draw()
keras.utils.set_random_seed(7)
by_keras = draw()
saved = keras.saving.load_model(sys.argv[1]).get_weights()
print(json.dumps({"imported_by_us": imported_by_us, "draws": [first, later, by_keras],
                  "keras_seed": rng_utils.get_random_seed(),
                  "keras_sees_tensorflow": rng_utils.tf.available,
                  "saved_as_trained": all(np.array_equal(a, b)
                                          for a, b in zip(saved, model.get_weights()))}))
"""


def test_a_jax_run_is_seeded_and_saved_without_importing_tensorflow_and_draws_the_same(
        tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "model.keras")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["imported_by_us"] is False  # saving and seeding left TensorFlow unimported
    first, later, by_keras = seen["draws"]
    # Python's, NumPy's and TensorFlow's draws after TensorFlow was imported following the
    # seeding (a worker's first run), after seeding with it loaded (a later run) and after
    # Keras's own seeding: the same numbers each time.
    assert first == later == by_keras
    assert seen["keras_seed"] == 7
    assert seen["keras_sees_tensorflow"] is True  # Keras's own handle still finds it
    assert seen["saved_as_trained"] is True


YOUR_CODE = """
import keras
import numpy

numpy.seterr(over="ignore")  # at import, so again in every run: each imports this afresh


def data(params):
    x = numpy.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64")


def model(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(inputs))
"""


@pytest.mark.backends("jax")
@pytest.mark.parametrize("code", [YOUR_CODE, YOUR_CODE.replace(
    'numpy.seterr(over="ignore")  # at import, so again in every run: each imports this afresh',
    "import wave  # a package no run imported before: it stays loaded")])
def test_a_workers_first_run_imports_nothing_of_greenscreens_that_would_retire_it(fake_smi,
                                                                                  tmp_path,
                                                                                  code):
    """Your module changes NumPy's error handling when imported, in every run; the worker
    puts it back. A package first imported during a run would make the worker retire
    (reset.retire_reason): the run path's own packages (the seeding's wrapt, on JAX) are
    imported when the worker starts, so one worker trains both runs. Or your module
    imports a package no run had, which stays loaded: a run that also changed a switch
    retires its worker, and the seeding's choice of JAX's threefry counted as the run's
    change, so every such run retired its worker (review)."""
    assert code.count("numpy.seterr") + code.count("import wave") == 1
    (tmp_path / "code.py").write_text(code)
    config = tmp_path / "config.yaml"
    config.write_text("settings: {runs: 2, epochs: 1, seed: 7, energy_source: nvidia-smi}\n"
                      "configuration:\n  model: {values: ['code:model']}\n"
                      "  dataset: {values: ['code:data']}\n  optimizer: {values: [SGD]}\n")
    slot = WorkerSlot()
    try:
        for name in ("first", "second"):
            ending = train(slot, str(config), tmp_path / name, {}, epochs=1)
            assert ending.code == 0 and ending.retired is None, ending.retired
        assert slot.started == 1
    finally:
        slot.close()


THREEFRY = r"""
import json
import jax
import keras
from greenscreen_pipeline.run import seeding

before = jax.config.jax_threefry_partitionable
seeding.seed_run(7)
print(json.dumps({"before": before, "after": jax.config.jax_threefry_partitionable,
                  "draw": keras.random.uniform((3,), seed=1).tolist()}))
"""


@pytest.mark.parametrize("yours", [None, "1"])
def test_a_jax_run_draws_with_jax_s_original_threefry_unless_you_chose_one(yours):
    """JAX's partitionable threefry compiles each initialiser's draw several times more
    slowly on CPU; a run uses the original one, and leaves your own choice alone."""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    env.pop("JAX_THREEFRY_PARTITIONABLE", None)
    if yours:
        env["JAX_THREEFRY_PARTITIONABLE"] = yours

    def seen():
        done = subprocess.run([sys.executable, "-c", THREEFRY], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, again = seen(), seen()
    assert first["before"] is True  # JAX's own default since 0.5
    assert first["after"] is (yours is not None)
    assert first["draw"] == again["draw"]  # a seed draws the same numbers in every process
