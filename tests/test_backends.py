"""What each Keras backend supports, as a user meets it: one clear error where it does not."""

import keras
import pytest

from greenscreen.training import MagnitudePruning, RankedUpdates, SampleGating


@pytest.mark.backends("torch")
@pytest.mark.parametrize("method", [RankedUpdates, SampleGating, MagnitudePruning])
def test_methods_name_the_supported_backends_under_torch(method):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(NotImplementedError, match=(
            f"{method.__name__} runs on the Keras backends tensorflow, jax; "
            "KERAS_BACKEND is 'torch'")):
        method(model)

