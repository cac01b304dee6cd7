"""Your model for a greenscreen sweep: called as mlp(input_shape, num_classes, params).

Return an uncompiled keras.Model: the pipeline compiles it with the run's optimizer,
learning rate and precision, wraps it for the run's method, measures and checkpoints it.
`params` is the run's whole configuration: the built-in dimensions and your own
(`units`, `hidden_layers` in config.yaml next to this file).
"""

import keras


def mlp(input_shape, num_classes, params):
    inputs = keras.Input(input_shape)
    x = inputs
    for _ in range(params["hidden_layers"]):
        x = keras.layers.Dense(params["units"], activation="relu")(x)
    # float32 output: the softmax stays stable under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="mlp")
