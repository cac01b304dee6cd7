"""Efficient-training methods: schedules, controller, masks, pruning, layer selection.

Run under every backend the methods support (`./greenscreen.sh test` runs this
module under TensorFlow and under JAX); the reference values are computed in
NumPy, so both backends are held to the same masks, thresholds and schedules.
"""

import math

import keras
import numpy as np
import pytest

from greenscreen.training import (
    MagnitudePruning,
    PIController,
    RankedUpdates,
    SampleGating,
    backend_unsupported,
    polynomial_sparsity,
    strip_pruning,
    update_percentage,
    weights_gzip_bytes,
    with_indices,
)
from greenscreen.training.base import magnitude_threshold, top_fraction

pytestmark = pytest.mark.backends("tensorflow", "jax")


def data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12)).astype("float32")
    return x, (x[:, :3].sum(axis=1) > 0).astype("int32")


def model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((12,)), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(2, activation="softmax")])


def compiled(wrapper, lr=1e-2):
    wrapper.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                    metrics=["accuracy"])
    return wrapper


# -- schedules ---------------------------------------------------------------------

@pytest.mark.parametrize("epoch, expected", [(0, 50), (5, 35), (10, 20), (-3, 50), (15, 20)])
def test_linear_percentage_matches_formula_and_clips(epoch, expected):
    assert update_percentage(epoch, 10, 50, 20, "linear") == pytest.approx(expected)


@pytest.mark.parametrize("epoch", [0, 2.5, 5, 10, 12])
def test_exponential_percentage_matches_formula_and_clips(epoch):
    frac = min(max(epoch / 10, 0), 1)
    assert update_percentage(epoch, 10, 50, 20, "exponential") == pytest.approx(
        50 * (20 / 50) ** frac)


@pytest.mark.parametrize("step, expected", [
    (0, 0.1), (100, 0.1), (200, 0.9 + (0.1 - 0.9) * (1 - 0.25) ** 3), (500, 0.9), (900, 0.9)])
def test_polynomial_sparsity_matches_zhu_gupta(step, expected):
    assert polynomial_sparsity(step, 0.1, 0.9, begin_step=100, end_step=500) == pytest.approx(
        expected)


# -- PI controller -------------------------------------------------------------------

def run_controller(controller, scores, steps):
    rates = []
    for _ in range(steps):
        batch = scores()
        rate = float(np.mean(batch >= float(controller.threshold.numpy())))
        controller.update(rate)
        rates.append(rate)
    return rates


def test_pi_controller_converges_to_target_on_stationary_scores():
    rng = np.random.default_rng(0)
    controller = PIController(target_rate=0.2)
    rates = run_controller(controller, lambda: rng.random(256), 400)
    assert np.mean(rates[-100:]) == pytest.approx(0.2, abs=0.03)
    assert float(controller.threshold.numpy()) == pytest.approx(0.8, abs=0.05)


def test_pi_controller_does_not_wind_up_at_saturation():
    rng = np.random.default_rng(1)
    controller = PIController(target_rate=0.2)
    # Every sample scores 1.0: the threshold saturates at 1 and the rate stays at 1.
    run_controller(controller, lambda: np.ones(64), 300)
    assert float(controller.threshold.numpy()) == pytest.approx(1.0)
    wound = abs(float(controller.integral.numpy()))
    assert wound < 20.0  # bounded, and not integrating while saturated
    # When scores become ordinary again it recovers quickly, not after unwinding.
    rates = run_controller(controller, lambda: rng.random(256), 150)
    assert np.mean(rates[-50:]) == pytest.approx(0.2, abs=0.05)


# -- sample gating ---------------------------------------------------------------------

def test_gating_trains_on_a_sub_batch_and_logs_its_state():
    x, y = data()
    gated = compiled(SampleGating(model(), target_rate=0.25))
    history = gated.fit(x, y, epochs=3, batch_size=64, verbose=0)
    for key in ("activation_rate", "threshold", "samples_trained", "accuracy"):
        assert key in history.history
    trained = history.history["samples_trained"][-1]
    assert 0 < trained < 3 * len(x)


def test_gating_fallback_fires_when_nothing_is_selected():
    x, y = data()
    gated = compiled(SampleGating(model(), target_rate=0.2, min_samples=3, kp=0.0, ki=0.0))
    gated.controller.base = 2.0
    gated.controller.threshold.assign(2.0)  # no score in [0, 1] can pass
    gated.fit(x, y, epochs=1, batch_size=len(x), verbose=0)  # one step
    assert float(gated.samples_trained.numpy()) == 3  # min_samples, chosen at random


def test_random_selector_is_a_control_arm_at_the_same_rate():
    x, y = data(1024)
    gated = compiled(SampleGating(model(), target_rate=0.25, selector="random"))
    history = gated.fit(x, y, epochs=2, batch_size=128, verbose=0)
    assert np.mean(history.history["activation_rate"]) == pytest.approx(0.25, abs=0.05)


def test_random_arm_never_trains_an_empty_sub_batch():
    x, y = data(64)
    gated = compiled(SampleGating(model(), target_rate=0.01, selector="random", min_samples=2))
    gated.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert float(gated.samples_trained.numpy()) >= 8  # every one of the 8 steps trained


@pytest.mark.parametrize("selector", ["significance", "random"])
def test_gating_gates_after_its_warmup_epoch(selector):
    """The warm-up and the gated step are two traced modes; the second must really gate."""
    x, y = data()
    gated = compiled(SampleGating(model(), target_rate=0.25, warmup_epochs=1, selector=selector))
    gated.fit(x, y, epochs=2, batch_size=64, verbose=0)
    second_epoch = float(gated.samples_trained.numpy()) - len(x)
    assert 0 < second_epoch <= 4 * math.ceil(0.25 * 64)  # 4 steps of at most k samples


@pytest.mark.parametrize("selector", ["significance", "random"])
def test_gating_warmup_trains_full_batches(selector):
    x, y = data()
    gated = compiled(SampleGating(model(), target_rate=0.1, warmup_epochs=1, selector=selector))
    gated.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert float(gated.samples_trained.numpy()) == len(x)


def test_gating_compiles_with_a_fixed_sub_batch():
    """jit_compile=True (XLA on TensorFlow; JAX always jit-compiles): k = ceil(0.3 * 64)."""
    x, y = data()
    gated = SampleGating(model(), target_rate=0.3)
    gated.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                  jit_compile=True)
    per_step = []
    gated.fit(x, y, epochs=2, batch_size=64, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(
                  on_train_batch_end=lambda b, logs: per_step.append(logs["samples_trained"]))])
    trained = np.diff([0.0] + [float(t) for t in per_step])
    assert len(trained) == 8 and np.all(trained >= 1) and np.all(trained <= math.ceil(0.3 * 64))


def test_gating_controller_tracks_its_target_during_fit():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2048, 12)).astype("float32")
    y = (x[:, :3].sum(axis=1) > 0).astype("int32")
    gated = compiled(SampleGating(model(), target_rate=0.2, seed=1), lr=1e-3)
    rates = []
    gated.fit(x, y, epochs=6, batch_size=32, verbose=0, callbacks=[  # 384 steps
        keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda b, logs: rates.append(float(logs["activation_rate"])))])
    assert np.mean(rates[192:]) == pytest.approx(0.2, abs=0.04)


# -- ranked updates --------------------------------------------------------------------

def test_weight_mode_masked_weights_stay_unchanged_under_adam():
    x, y = data(64)
    ranked = compiled(RankedUpdates(model(), high_percentage=30, low_percentage=30))
    ranked.fit(x[:8], y[:8], epochs=1, batch_size=8, verbose=0)  # builds optimizer state
    before = [v.numpy().copy() for v in ranked.trainable_variables]
    ranked.fit(x[:8], y[:8], epochs=1, batch_size=8, verbose=0)
    for old, var in zip(before, ranked.trainable_variables):
        changed = int(np.sum(old != var.numpy()))
        # Adam's momentum moves nothing outside each variable's top 30% (rounded up).
        assert changed <= int(np.ceil(0.3 * old.size))


def test_layer_mode_computes_fewer_gradients_and_freezes_the_rest():
    x, y = data(512)
    ranked = compiled(RankedUpdates(model(), high_percentage=33, low_percentage=33,
                                    granularity="layer", rerank_every=1000))
    after_first = {}

    class Snapshot(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:  # `self.model` brings JAX's state back into the variables
                after_first.update({v.path: keras.ops.convert_to_numpy(v).copy()
                                    for v in self.model.trainable_variables})

    snapshot = Snapshot()
    ranked.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=[snapshot])
    chosen = ranked.mode  # step 0 ranked the layers; steps 1..7 used this selection
    assert chosen is not None and len(chosen) == 1  # 33% of 3 layers
    assert ranked.traced_gradients[chosen] == 2 < ranked.traced_gradients[None] == 6
    for i, (_, variables) in enumerate(ranked.groups):
        for var in variables:
            unchanged = np.array_equal(after_first[var.path], var.numpy())
            assert unchanged == (i not in chosen), (i, chosen)


def test_bottom_up_freezing_trains_the_top_layers_without_ranking_steps():
    x, y = data(512)
    frozen = compiled(RankedUpdates(model(), high_percentage=34, low_percentage=34,
                                    granularity="layer", freeze="bottom_up"))
    first = [keras.ops.convert_to_numpy(v).copy() for v in frozen.groups[0][1]]
    history = frozen.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert frozen.mode == (1, 2)  # ceil(34% of 3 layers) = 2: the top two, in model order
    assert list(frozen.traced_gradients) == [(1, 2)]  # no full ranking step ever ran
    assert frozen.traced_gradients[(1, 2)] == 4  # kernel and bias of the top two layers
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(first, frozen.groups[0][1]))
    assert history.history["update_fraction"] == pytest.approx([2 / 3, 2 / 3])
    with pytest.raises(ValueError, match="freeze='bottom_up' is not valid with granularity"):
        RankedUpdates(model(), freeze="bottom_up")


def memory_after_each_epoch(gated, x, y, epochs):
    seen = []

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # `self.model`: JAX's state read back
            seen.append(keras.ops.convert_to_numpy(self.model.loss_memory).copy())

    gated.fit(with_indices(x), y, epochs=epochs, batch_size=64, shuffle=True, verbose=0,
              callbacks=[Keep()])
    return seen


def test_stale_scores_drop_the_scoring_pass_and_remember_trained_losses():
    x, y = data(512)
    gated = compiled(SampleGating(model(), target_rate=0.25, warmup_epochs=1, scoring="stale",
                                  num_samples=512))
    warm, gated_1 = memory_after_each_epoch(gated, x, y, epochs=2)
    assert (warm >= 0).all()  # the full-batch epoch remembered every sample's loss
    changed = int((gated_1 != warm).sum())
    # Only the 8 batches x 16 trained samples got a new loss: no scoring pass ran.
    assert 0.8 * 128 <= changed <= 128


def test_stale_scores_score_unseen_samples_once_and_refresh_on_schedule():
    x, y = data(512)
    gated = compiled(SampleGating(model(), target_rate=0.25, scoring="stale", num_samples=512,
                                  refresh_every=1))
    first, refreshed = memory_after_each_epoch(gated, x, y, epochs=2)
    assert (first >= 0).all()  # every unseen sample was scored on its first batch
    assert int((refreshed != first).sum()) > 0.9 * 512  # epoch 1: every batch scored afresh
    with pytest.raises(ValueError, match="scoring='stale' needs selector='significance' and "
                                         "num_samples"):
        SampleGating(model(), scoring="stale")


def test_layer_mode_keeps_a_bounded_number_of_traces():
    x, y = data(512)
    ranked = compiled(RankedUpdates(model(), granularity="layer", rerank_every=2, max_traces=2))
    ranked.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert len(ranked._functions) <= 3


@pytest.mark.parametrize("saliency", ["gradient", "grad_x_weight"])
@pytest.mark.parametrize("schedule", ["linear", "exponential"])
def test_weight_mode_trains_with_every_saliency_and_schedule(saliency, schedule):
    x, y = data(256)
    ranked = compiled(RankedUpdates(model(), high_percentage=60, low_percentage=10,
                                    schedule=schedule, saliency=saliency))
    history = ranked.fit(x, y, epochs=3, batch_size=64, verbose=0)
    # update_fraction follows the schedule at epochs 0, 1, 2 of 3.
    expected = [update_percentage(e, 3, 60, 10, schedule) / 100 for e in range(3)]
    assert history.history["update_fraction"] == pytest.approx(expected, abs=1e-5)
    assert history.history["loss"][-1] < history.history["loss"][0]


# -- masks and thresholds against NumPy ------------------------------------------------

def test_magnitude_threshold_matches_a_sort():
    values = np.abs(np.random.default_rng(4).standard_normal(1000)).astype("float32")
    for k in (1, 10, 500, 999):
        t = float(keras.ops.convert_to_numpy(magnitude_threshold(keras.ops.array(values), k)))
        assert t == pytest.approx(np.sort(values)[k - 1], rel=1e-5, abs=1e-6)
    none = magnitude_threshold(keras.ops.array(values), 0)
    assert float(keras.ops.convert_to_numpy(none)) == -1


def test_top_fraction_masks_the_same_entries_as_numpy():
    """Same masks from the same gradients on every backend: both equal NumPy's top-k."""
    grad = np.random.default_rng(5).standard_normal((40, 30)).astype("float32")
    for keep in (0.05, 0.3, 0.77):
        mask = keras.ops.convert_to_numpy(top_fraction(keras.ops.abs(grad), keep))
        k = math.ceil(keep * grad.size)
        expected = np.zeros(grad.size, bool)
        expected[np.argsort(-np.abs(grad).ravel())[:k]] = True
        np.testing.assert_array_equal(mask.ravel(), expected)


# -- pruning -----------------------------------------------------------------------------

def test_pruned_weights_stay_zero_and_strip_returns_a_plain_model(tmp_path):
    x, y = data(1024)
    pruned = compiled(MagnitudePruning(model(), final_sparsity=0.8, begin_step=0, end_step=40,
                                       frequency=10))
    history = pruned.fit(x, y, epochs=4, batch_size=64, verbose=0)
    assert history.history["sparsity"][-1] == pytest.approx(0.8, abs=0.01)
    plain = strip_pruning(pruned)
    assert type(plain) is keras.Sequential
    for kernel, mask in zip(pruned.pruned, pruned.masks):
        assert np.all(kernel.numpy()[mask.numpy() == 0] == 0)
    zeros = sum(int(np.sum(v.numpy() == 0)) for v in pruned.pruned)
    assert zeros / sum(v.numpy().size for v in pruned.pruned) >= 0.79
    assert weights_gzip_bytes(plain) < weights_gzip_bytes(model())


@pytest.mark.parametrize("end_step, frequency", [(37, 10), (10, 100)])
def test_pruning_reaches_final_sparsity_at_end_step_whatever_the_frequency(end_step, frequency):
    """Masks were updated only every `frequency` steps: 37 steps by 10 stopped at the
    sparsity of step 30 (0.79 of 0.8), and 10 steps by 100 never pruned."""
    x, y = data(64 * 40)
    pruned = compiled(MagnitudePruning(model(), final_sparsity=0.8, end_step=end_step,
                                       frequency=frequency))
    history = pruned.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert history.history["sparsity"][-1] == pytest.approx(0.8, abs=1e-3)


# -- bad arguments -------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda m: RankedUpdates(m, high_percentage=20, low_percentage=50), "low_percentage=50"),
    (lambda m: RankedUpdates(m, schedule="cosine"), "schedule='cosine' is not valid"),
    (lambda m: RankedUpdates(m, granularity="neuron"), "granularity='neuron'"),
    (lambda m: SampleGating(m, target_rate=0), "target_rate=0 is not valid"),
    (lambda m: SampleGating(m, target_rate=1.5), "target_rate=1.5 is not valid"),
    (lambda m: SampleGating(m, selector="best"), "selector='best' is not valid"),
    (lambda m: SampleGating(m, controller="pid"), "controller='pid' is not valid"),
    (lambda m: MagnitudePruning(m, final_sparsity=1.0), "final_sparsity=1.0 is not valid"),
    (lambda m: MagnitudePruning(m, end_step=0), "end_step=0 is not valid"),
])
def test_bad_arguments_name_the_argument_and_the_allowed_values(make, match):
    with pytest.raises(ValueError, match=match + ".*allowed"):
        make(model())


@pytest.mark.parametrize("method, settings, match", [
    (RankedUpdates, {"granularity": "weight", "freeze": "bottom_up"},
     "freeze='bottom_up' is not valid with granularity='weight'; allowed: granularity='layer'"),
    (RankedUpdates, {"high_percentage": 20, "low_percentage": 50}, "low_percentage=50"),
    (SampleGating, {"selector": "random", "scoring": "stale"},
     "scoring='stale' is not valid with selector='random'; allowed: selector='significance'"),
    (SampleGating, {"target_rate": 0}, "target_rate=0 is not valid"),
    (MagnitudePruning, {"final_sparsity": 1.0}, "final_sparsity=1.0 is not valid"),
])
def test_incompatible_settings_are_told_without_a_model_as_the_constructor_tells_them(
        method, settings, match):
    reason = method.incompatibility(**settings)
    assert reason is not None and reason.startswith(match)
    with pytest.raises(ValueError) as raised:
        method(model(), **settings)
    assert str(raised.value) == reason  # one rule, one message
    assert method.incompatibility() is None


def test_possible_settings_have_no_incompatibility():
    assert RankedUpdates.incompatibility(granularity="layer", freeze="bottom_up") is None
    assert SampleGating.incompatibility(scoring="stale") is None  # num_samples is data's
    assert MagnitudePruning.incompatibility(final_sparsity=0.5, end_step=10) is None


def test_backend_support_is_told_without_a_model():
    assert backend_unsupported() is None  # this module runs under tensorflow and jax
    assert backend_unsupported("method ranked", backend="torch") == (
        "method ranked runs on the Keras backends tensorflow, jax; KERAS_BACKEND is 'torch'. "
        "Set KERAS_BACKEND=jax or tensorflow before importing keras (the callbacks, "
        "SMICallback included, work on every backend).")
    assert backend_unsupported(backend="tensorflow", loss_scaling=True) is None
    scaled = backend_unsupported("method gated", backend="jax", loss_scaling=True)
    assert scaled.startswith("method gated on JAX does not support float16 loss scaling")
    assert "LossScaleOptimizer" in scaled and "mixed_bfloat16" in scaled


def test_float16_loss_scaling_is_a_clear_error_on_jax_and_trains_elsewhere():
    x, y = data(64)
    keras.config.set_dtype_policy("mixed_float16")
    try:
        gated = SampleGating(model())
        if keras.backend.backend() == "jax":
            with pytest.raises(NotImplementedError, match="mixed_bfloat16"):
                compiled(gated)
        else:
            compiled(gated).fit(x, y, epochs=1, batch_size=32, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")


def test_unbuilt_model_is_a_clear_error():
    with pytest.raises(ValueError, match="a built model"):
        SampleGating(keras.Sequential([keras.layers.Dense(2)]))


def test_pruning_reaches_its_sparsity_under_xla():
    x, y = data(512)
    pruned = MagnitudePruning(model(), final_sparsity=0.7, end_step=16, frequency=4)
    pruned.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy",
                   jit_compile=True)
    history = pruned.fit(x, y, epochs=3, batch_size=64, verbose=0)
    assert history.history["sparsity"][-1] == pytest.approx(0.7, abs=0.01)


@pytest.mark.parametrize("name, tolerance", [("pi", 0.01), ("ast", 0.035)])
@pytest.mark.parametrize("stream", ["stationary", "drifting"])
def test_both_controllers_track_their_target(name, tolerance, stream):
    """benchmarks/controllers.py measures the same streams over more seeds (RESULTS.md)."""
    from greenscreen.training.controllers import CONTROLLERS, simulate

    rng = np.random.default_rng(7)
    steps = 2000
    draw = {"stationary": lambda step: rng.random(128),  # scores as losses shrink:
            "drifting": lambda step: rng.beta(2.0, 2.0 + 10.0 * step / steps, 128)}[stream]
    rates = simulate(CONTROLLERS[name](0.1), draw, steps)
    assert np.mean(rates[steps // 2:]) == pytest.approx(0.1, abs=tolerance)


def test_the_ast_controller_uses_the_published_gains_and_clamp():
    from greenscreen.training import ASTController

    assert (ASTController(0.1).kp, ASTController(0.1).ki) == (0.0015, 0.00005)
    assert (ASTController(0.06).kp, ASTController(0.06).ki) == (0.0008, 0.000002)
    controller = ASTController(0.1)
    for _ in range(200):  # every sample passes: the error stays positive and the
        controller.update(1.0)  # integral saturates, then decays by 0.9 at the clamp
    assert abs(float(controller.integral.numpy())) <= 50.0
    gated = SampleGating(model(), target_rate=0.1, controller="ast")
    assert isinstance(gated.controller, ASTController)
