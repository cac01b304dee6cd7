"""TensorFlow: a gradient tape, and Keras's stateful `train_step(data)` as it is."""

from __future__ import annotations

import tensorflow as tf


def train_step(model, data):
    return model.method_step(data)


def gradients(model, x, y, sample_weight, variables):
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                  training=True)
        scaled = model.optimizer.scale_loss(loss)
    return tape.gradient(scaled, variables), y_pred, loss
