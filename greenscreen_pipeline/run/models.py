"""Model builders (all offline, `weights=None`) and their analytic FLOPs.

FLOPs per training step = 3 x forward FLOPs x batch size: the backward pass
costs about twice the forward (gradients for inputs and for weights). Forward
FLOPs are summed per layer: 2 x multiply-accumulates of Dense and convolution
layers plus 2 per element for normalisation; pooling and activations are left
out (they are small next to the matrix work).
"""

from __future__ import annotations

import math
from pathlib import Path

import keras
from keras import layers

from greenscreen.validation import invalid

from .. import user_code

MIN_SIDE = {"resnet50": 32, "vgg19": 32, "alexnet": 32, "resnet18": 8}


def build(name: str, input_shape: tuple, num_classes: int, cfg: dict,
          config_dir: "str | Path | None" = None) -> keras.Model:
    """Builds model `name` for the data's shape; `cfg` carries resnet_* options.

    `name` may be your own "module:function" (imported from `config_dir` first), called
    as function(input_shape, num_classes, params) with the run's whole configuration.
    """
    if user_code.is_entry(name):
        function = user_code.load(name, "model", config_dir or ".")
        model = function(tuple(input_shape), num_classes, cfg)
        if not isinstance(model, keras.Model):
            raise NotAModel(f"{name} returned a {type(model).__name__}; allowed: a "
                            "keras.Model (uncompiled: the pipeline compiles it)")
        return model
    inputs = keras.Input(input_shape)
    x = inputs
    side = MIN_SIDE.get(name, 0)
    if side and min(input_shape[:2]) < side:
        x = layers.Resizing(side, side)(x)  # e.g. 8x8 digits into a 32x32 architecture
    depth, width = cfg.get("resnet_depth", 2), cfg.get("resnet_width", 16)
    body = {
        "small_cnn": _small_cnn, "ffnn": _ffnn, "alexnet": _alexnet,
        "resnet": lambda t, n: _resnet(t, n, [depth] * 2, [width, 2 * width],
                                       cfg.get("resnet_shortcuts", True)),
        "resnet18": lambda t, n: _resnet(t, n, [2, 2, 2, 2], [64, 128, 256, 512], True),
        "resnet50": lambda t, n: _application(keras.applications.ResNet50, t, n),
        "vgg19": lambda t, n: _application(keras.applications.VGG19, t, n),
    }
    if name not in body:
        raise invalid("model", name, ", ".join(body))
    outputs = body[name](x, num_classes)
    return keras.Model(inputs, outputs, name=name)


def defined_words(name: str, config_dir: "str | Path | None") -> str:
    """" (def at model.py:12)": where your model function `name` is defined; "" for a
    built-in model or where that is unknown."""
    if not user_code.is_entry(name):
        return ""
    where = user_code.defined_at(user_code.load(name, "model", config_dir or "."))
    return f" (def at {where})" if where else ""


def known_output_shape(net: keras.Model, input_shape) -> tuple | None:
    """The model's output shape without its batch axis (`output_shape`); a model Keras
    cannot build before a call (a subclassed model, a Sequential without an `Input`) is
    built here by calling it once on one sample of zeros per input, as its first `fit`
    step would: counting its parameters, quantizing it and checking its output need its
    weights. None where zeros are no input it takes (its first layer reads text, say):
    `fit` builds it on the data then, as Keras would."""
    shape = output_shape(net)
    if shape is not None:
        return shape
    zeros = keras.tree.map_shape_structure(lambda s: keras.ops.zeros((1, *s)), input_shape)
    try:
        return shape_of(net(zeros, training=False))
    except Exception:  # noqa: BLE001 - not buildable on zeros: no output check, as before
        return None


def shape_of(output) -> tuple:
    """An output's shape without the batch axis; several outputs: a tuple of theirs."""
    shapes = tuple(tuple(keras.ops.shape(o))[1:] for o in keras.tree.flatten(output))
    return shapes[0] if len(shapes) == 1 else shapes


def output_shape(net: keras.Model) -> tuple | None:
    """The model's output shape without its batch axis, where Keras knows it before any call
    (a functional or Sequential model); None for a subclassed model not yet called. A model
    with several outputs: a tuple of their shapes, one each."""
    try:
        outputs = net.outputs
    except (AttributeError, ValueError):
        return None
    if not outputs:
        return None
    shapes = tuple(tuple(o.shape[1:]) for o in outputs)
    return shapes[0] if len(shapes) == 1 else shapes


def check_outputs(shape: tuple, num_classes: int, classification: bool, name: str) -> None:
    """The model's output (`shape`, without the batch axis) fits the labels: one value per
    class for classification, the targets' values per sample otherwise. Checked here, once,
    rather than met as a shape error deep inside the first `fit` step.

    Raises:
        ModelError: naming the model, the shape it gave and the shape allowed.
    """
    if shape and isinstance(shape[0], tuple):
        raise ModelError(f"{name} returned a model with {len(shape)} outputs {list(shape)}; "
                         "allowed: one output")
    if classification:
        if tuple(shape) != (num_classes,):
            raise ModelError(f"{name} returned a model whose output per sample has shape "
                             f"{tuple(shape)}; allowed: ({num_classes},), one value per class "
                             f"(your function gets num_classes={num_classes})")
    elif shape and None not in shape and math.prod(shape) != num_classes:
        raise ModelError(f"{name} returned a model with {math.prod(shape)} output(s) per "
                         f"sample (shape {tuple(shape)}); allowed: {num_classes}, as many as "
                         f"the targets have (your function gets num_classes={num_classes})")


class ModelError(ValueError):
    """A model that cannot fit the run's labels; the message says what it gave."""


class NotAModel(TypeError):
    """Your model function returned something that is not a keras.Model."""


def _head(x, num_classes):
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)


def _small_cnn(x, num_classes):
    """Two conv blocks and a small dense head: sized for 2 CPU cores."""
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    return _head(x, num_classes)


def _ffnn(x, num_classes):
    """A 3-layer feed-forward network: two hidden layers and the output layer."""
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dense(64, activation="relu")(x)
    return _head(x, num_classes)


def _alexnet(x, num_classes):
    """AlexNet's five conv and three dense layers, scaled for 32x32 inputs."""
    for filters, size, pool in ((64, 5, True), (192, 5, True), (384, 3, False),
                                (256, 3, False), (256, 3, True)):
        x = layers.Conv2D(filters, size, padding="same", activation="relu")(x)
        if pool:
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(1024, activation="relu")(x)
        x = layers.Dropout(0.5)(x)
    return _head(x, num_classes)


def _resnet(x, num_classes, blocks: list, widths: list, shortcuts: bool):
    """Basic-block ResNet with Glorot (Xavier) initialisation; shortcuts can be switched off."""
    init = "glorot_uniform"
    x = layers.Conv2D(widths[0], 3, padding="same", kernel_initializer=init)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for stage, (n, width) in enumerate(zip(blocks, widths)):
        for b in range(n):
            stride = 2 if stage > 0 and b == 0 else 1
            y = layers.Conv2D(width, 3, strides=stride, padding="same", kernel_initializer=init)(x)
            y = layers.ReLU()(layers.BatchNormalization()(y))
            y = layers.Conv2D(width, 3, padding="same", kernel_initializer=init)(y)
            y = layers.BatchNormalization()(y)
            if shortcuts:
                if stride != 1 or x.shape[-1] != width:
                    x = layers.Conv2D(width, 1, strides=stride, kernel_initializer=init)(x)
                y = layers.Add()([x, y])
            x = layers.ReLU()(y)
    x = layers.GlobalAveragePooling2D()(x)
    return _head(x, num_classes)


def _application(app, x, num_classes):
    base = app(include_top=False, weights=None, input_shape=tuple(x.shape[1:]), pooling="avg")
    return _head(base(x), num_classes)


def forward_flops(model: keras.Model) -> int:
    """Forward FLOPs for one sample, summed over every (nested) layer."""
    total = 0
    for layer in _leaves(model):
        kernel = getattr(layer, "kernel", None)
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)) and kernel is not None:
            out = layer.output.shape
            total += 2 * math.prod(kernel.shape) * out[1] * out[2]
        elif isinstance(layer, layers.Dense) and kernel is not None:
            total += 2 * math.prod(kernel.shape)
        elif isinstance(layer, layers.BatchNormalization):
            total += 2 * math.prod(d for d in layer.output.shape[1:])
    return int(total)


def train_step_flops(model: keras.Model, batch_size: int) -> int:
    return 3 * forward_flops(model) * batch_size


def _leaves(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _leaves(layer)
        else:
            yield layer
