"""A tf.data split of unknown length is counted batch by batch in Python: one that never
ends (a generator that loops forever, Keras 2's style) is refused after a bound, and a
signal is heard while it is counted (a read-only review: `greenscreen check` hung at
100 % CPU on one, deaf to Ctrl-C and SIGTERM, in `Dataset.reduce`)."""

import signal

import numpy as np
import pytest

from greenscreen_pipeline.run.data import DataError
from greenscreen_pipeline.run.user_data import counted, steps

pytestmark = pytest.mark.backends("tensorflow")


def generated(batches=None):
    """A dataset from a Python generator: TensorFlow does not know its length."""
    import tensorflow as tf

    def gen():
        i = 0
        while batches is None or i < batches:
            i += 1
            yield np.zeros((4, 2), "float32"), np.zeros(4, "int64")

    return tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec((None, 2), tf.float32), tf.TensorSpec((None,), tf.int64)))


def test_a_stream_of_unknown_length_is_counted():
    assert steps(generated(37), "data:ds()['train']") == 37


def test_a_stream_that_never_ends_is_refused_after_the_bound():
    with pytest.raises(DataError, match=r"data:ds\(\)\['train'\] did not end after 200 "
                                        r"batches.*assert_cardinality"):
        counted(generated(), "data:ds()['train']", most=200)


class Heard(Exception):
    pass


def test_a_signal_is_heard_while_an_endless_stream_is_counted():
    def heard(signum, frame):
        raise Heard

    previous = signal.signal(signal.SIGALRM, heard)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(Heard):
            counted(generated(), "data:ds()['train']", most=10 ** 12)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
