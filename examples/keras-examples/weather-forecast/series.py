"""The data of the Keras example "Timeseries forecasting for weather prediction",
offline: a synthetic multivariate series (seeded daily and yearly sines plus noise, three
features, hourly) stands in for the Jena climate record, and is prepared the way the
example prepares it: normalised with the train split's mean and deviation, the first
part for training and the rest for validation, windows of past observations (one
every `step` hours) and as target the first feature ("temperature") `future` hours after
the window.

The example builds its windows with keras.utils.timeseries_dataset_from_array (a
tf.data pipeline); they are built here with NumPy, the same windows, so the study runs
under every Keras backend. There is no test split: runs are evaluated on the validation
split.
"""

import numpy as np

HOURS = 2000     # the length of the series: tiny, so that a run trains in seconds
PAST = 48        # hours of history in a window
STEP = 4         # one observation every 4 hours: windows of 12 steps
FUTURE = 12      # the target: the temperature 12 hours after the window
TRAIN_SPLIT = 0.75


def _weather():
    rng = np.random.default_rng(0)  # the same series in every run
    t = np.arange(HOURS, dtype="float64")
    day, year = 2 * np.pi * t / 24, 2 * np.pi * t / (24 * 365 / 8)  # a fast "year"
    temperature = 10 + 8 * np.sin(year) + 4 * np.sin(day) + rng.normal(0, 1, HOURS)
    pressure = 1000 + 5 * np.cos(year) + rng.normal(0, 1, HOURS)
    humidity = 60 - 2 * temperature + 10 * np.sin(day + 1) + rng.normal(0, 3, HOURS)
    return np.stack([temperature, pressure, humidity], axis=1)


def _windows(features, target):
    starts = np.arange(0, len(features) - PAST - FUTURE + 1)
    x = np.stack([features[s:s + PAST:STEP] for s in starts])
    y = target[starts + PAST + FUTURE - 1][:, None]
    return x.astype("float32"), y.astype("float32")


def series(params):
    features = _weather()
    split = int(TRAIN_SPLIT * len(features))
    mean, std = features[:split].mean(axis=0), features[:split].std(axis=0)
    features = (features - mean) / std  # normalised as the example does, by the train part
    train, val = features[:split], features[split:]
    return {"train": _windows(train, train[:, 0]), "validation": _windows(val, val[:, 0])}
