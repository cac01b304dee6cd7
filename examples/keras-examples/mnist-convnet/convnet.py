"""The model of the Keras example "Simple MNIST convnet", for 8x8 digits.

The example's Conv2D -> MaxPooling2D -> ... -> Flatten -> Dropout -> Dense(softmax),
with one convolution block (an 8x8 image has room for one) and the run's `filters` and
`dropout` (dimensions of your own, in config.yaml). The pipeline compiles it (the
example's compile and fit are the sweep's: optimizer, lr, batch_size, epochs).
"""

import keras
from keras import layers


def convnet(input_shape, num_classes, params):
    return keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(params["filters"], kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(params["dropout"]),
            # float32 output: the softmax stays stable under mixed precision.
            layers.Dense(num_classes, activation="softmax", dtype="float32"),
        ],
        name="convnet",
    )
