"""A run process on TensorFlow does not import JAX for TFLite and Keras's Orbax callback, and
both get what they would have had once something imports JAX."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")
pytest.importorskip("tensorflow")

# In a fresh process, as the worker and the run process start: the refusal, then Keras.
SCRIPT = r"""
import importlib, json, sys
from greenscreen_pipeline.run import jax_side_imports
installed = jax_side_imports.leave_out()
import keras
import numpy as np
seen = {"installed": installed, "backend": keras.backend.backend(),
        "jax_after_keras": "jax" in sys.modules}
# A run trains as before.
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
model.compile("sgd", "mse")
seen["loss"] = float(model.train_on_batch(np.ones((4, 3)), np.zeros((4, 2))))
# Then your code imports JAX: TFLite gets its jit, the Orbax callback's module its JAX.
import jax
if "tensorflow" in sys.modules:
    util = importlib.import_module("tensorflow.lite.python.util")
    lite = importlib.import_module("tensorflow.lite.python.lite")  # its own copy of _jit
    seen["tflite_jit_is_jax_jit"] = util._jit is jax.jit and lite._jit is jax.jit
seen["record_scalar"] = hasattr(jax.monitoring, "record_scalar")
seen["x2"] = float(jax.jit(lambda x: 2 * x)(1.5))
print(json.dumps(seen))
"""


def run(backend):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_tensorflow_is_imported_without_jax_and_tflite_gets_jax_once_it_is_imported():
    seen = run("tensorflow")
    assert seen["installed"] is True and seen["backend"] == "tensorflow"
    assert seen["jax_after_keras"] is False  # neither TFLite nor Keras's callback imported it
    assert seen["loss"] == seen["loss"]  # trained: a number
    assert seen["tflite_jit_is_jax_jit"] is True  # the JAX converter works as before
    assert seen["record_scalar"] is True and seen["x2"] == 3.0


def test_keras_on_jax_imports_jax_as_always():
    seen = run("jax")
    assert seen["backend"] == "jax" and seen["jax_after_keras"] is True
    assert seen["loss"] == seen["loss"] and seen["x2"] == 3.0
