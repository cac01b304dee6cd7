"""The data of the Keras example "Simple MNIST convnet", offline: scikit-learn's embedded
digits (8x8 images, 10 classes) stand in for MNIST, prepared the way the example prepares
MNIST: scaled to [0, 1], a channel axis added, one train and one validation split.

Like the example (and most Keras examples) there is no test split: each run is then
evaluated on the validation split (results.json: "evaluated_on": "validation").
"""

import numpy as np
from sklearn.datasets import load_digits


def digits(params):
    x, y = load_digits(return_X_y=True)  # embedded in scikit-learn: nothing is downloaded
    # Scale images to the [0, 1] range
    x = x.reshape(-1, 8, 8).astype("float32") / 16
    # Make sure images have shape (8, 8, 1)
    x = np.expand_dims(x, -1)
    order = np.random.default_rng(0).permutation(len(x))  # the same split in every run
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    return {"train": (x[:split], y[:split]), "validation": (x[split:], y[split:])}
