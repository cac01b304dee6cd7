"""A run is seeded as keras.utils.set_random_seed seeds it, without importing TensorFlow for it."""

import json
import os
import subprocess
import sys

# In a fresh JAX process: a run seeded, TensorFlow imported by "its own code" afterwards and
# drawn from; a second run with the same seed, now that TensorFlow is loaded (a warm
# worker's later run); then Keras's own set_random_seed, the reference.
SCRIPT = r"""
import json, random, sys
import keras
import numpy as np
from keras.src.utils import rng_utils
from greenscreen_pipeline.run import seeding

seeding.seed_run(7)
loaded_by_seeding = "tensorflow" in sys.modules
import tensorflow as tf

def draw():
    return [random.random(), float(np.random.rand()), tf.random.uniform([3]).numpy().tolist()]

first = draw()
seeding.seed_run(7)
later = draw()
keras.utils.set_random_seed(7)
print(json.dumps({"loaded_by_seeding": loaded_by_seeding, "draws": [first, later, draw()],
                  "keras_seed": rng_utils.get_random_seed(),
                  "keras_sees_tensorflow": rng_utils.tf.available}))
"""


def test_a_jax_run_is_seeded_without_importing_tensorflow_and_draws_the_same_either_way():
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["loaded_by_seeding"] is False  # seeding alone left TensorFlow unimported
    first, later, by_keras = seen["draws"]
    # Python's, NumPy's and TensorFlow's draws after TensorFlow was imported following the
    # seeding (a worker's first run), after seeding with it loaded (a later run) and after
    # Keras's own seeding: the same numbers each time.
    assert first == later == by_keras
    assert seen["keras_seed"] == 7
    assert seen["keras_sees_tensorflow"] is True  # Keras's own handle still finds it
