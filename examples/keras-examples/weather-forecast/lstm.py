"""The model of the Keras example "Timeseries forecasting for weather prediction": an
LSTM over a window of observations and one Dense output, the next temperature.

`num_classes` is the number of outputs for a regression (1: one target per sample); the
pipeline compiles the model with the run's optimizer and `loss: mse` from config.yaml, and
`units` is a dimension of your own.
"""

import keras


def lstm(input_shape, num_classes, params):
    inputs = keras.layers.Input(shape=input_shape)
    lstm_out = keras.layers.LSTM(params["units"])(inputs)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(lstm_out)
    return keras.Model(inputs=inputs, outputs=outputs, name="lstm")
