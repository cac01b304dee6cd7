"""The training methods with Keras's checkpoint callbacks, as the README's resume recipe
uses them: BackupAndRestore resumes a method's fit; a whole-model save, which the wrappers
cannot give, is one clear error before training, not a crash at the first epoch's end."""

import json

import keras
import pytest
from test_callbacks import StopMidEpoch
from test_training import compiled, data, model

from greenscreen import SMICallback
from greenscreen.training import MagnitudePruning, RankedUpdates, SampleGating

pytestmark = pytest.mark.backends("tensorflow", "jax")
WRAPPERS = {"gated": lambda m: SampleGating(m, target_rate=0.5),
            "ranked": lambda m: RankedUpdates(m),
            "pruned": lambda m: MagnitudePruning(m, final_sparsity=0.5, end_step=10)}


@pytest.mark.parametrize("method", WRAPPERS)
def test_backup_and_restore_resumes_a_method_s_fit(method, tmp_path):
    """It refused the unbuilt wrapper on TensorFlow ("you model must be built")."""
    x, y = data()
    log, backup = tmp_path / "run", str(tmp_path / "run" / "backup")
    first = compiled(WRAPPERS[method](model()))
    with pytest.raises(KeyboardInterrupt):
        first.fit(x, y, epochs=4, batch_size=64, verbose=0, callbacks=[
            SMICallback(log_dir=log, source="estimate"),
            keras.callbacks.BackupAndRestore(backup), StopMidEpoch(2)])
    again = compiled(WRAPPERS[method](model()))
    again.fit(x, y, epochs=4, batch_size=64, verbose=0, callbacks=[
        SMICallback(log_dir=log, source="estimate"), keras.callbacks.BackupAndRestore(backup)])
    epochs = [line.split(",")[0] for line in (log / "logs.csv").read_text().splitlines()[1:]]
    assert epochs == ["0", "1", "2", "3"]  # each epoch once, the first two not trained again
    assert len(json.loads((log / "summary.json").read_text())["attempts"]) == 2


def test_a_whole_model_save_is_one_clear_error_before_training(tmp_path):
    x, y = data()
    gated = compiled(SampleGating(model(), target_rate=0.5))
    with pytest.raises(ValueError, match=r"ModelCheckpoint\(save_weights_only=False\): a "
                                         r"SampleGating cannot be saved as a whole"):
        gated.fit(x, y, epochs=1, verbose=0, callbacks=[
            keras.callbacks.ModelCheckpoint(str(tmp_path / "m.keras"))])
    assert int(gated.optimizer.iterations.numpy()) == 0  # nothing trained
    with pytest.raises(NotImplementedError, match="save its weights"):
        gated.save(tmp_path / "m.keras")
    gated.fit(x, y, epochs=1, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(
        str(tmp_path / "m.weights.h5"), save_weights_only=True)])
    restored = SampleGating(model(seed=1), target_rate=0.5)
    restored.load_weights(tmp_path / "m.weights.h5")
    assert all((a == b).all() for a, b in zip(restored.inner.get_weights(),
                                              gated.inner.get_weights()))


def test_numpy_scalars_are_numbers_to_the_methods():
    """`target_rate=np.float32(0.3)` was refused with "allowed: a number in (0, 1]"."""
    import numpy as np

    gated = SampleGating(model(), target_rate=np.float32(0.3), warmup_epochs=np.int64(1))
    assert float(gated.target_rate) == pytest.approx(0.3)
    assert RankedUpdates(model(), high_percentage=np.int64(50)).high == 50
    with pytest.raises(ValueError, match="allowed: a number in"):
        SampleGating(model(), target_rate=np.bool_(True))


@pytest.mark.parametrize("augmentation", ["None", "mixup"])
def test_a_run_resumed_from_its_epoch_checkpoint_ends_as_one_never_stopped(tmp_path,
                                                                          augmentation):
    """The pipeline's checkpoint holds the model's random states (Dropout's: Keras's
    `save_weights` leaves them out) and its batches start at the resumed epoch's order and
    draws, so 2 epochs + resume + 2 epochs give the weights of 4 epochs straight."""
    import numpy as np

    from greenscreen_pipeline.run import batches, checkpoint

    rng = np.random.default_rng(0)
    x, y = rng.random((96, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, 96)
    augment = None if augmentation == "None" else batches.augmenter(augmentation, 5,
                                                                    "float32")

    def fresh():
        keras.utils.set_random_seed(1)
        net = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(16, activation="relu"),
                                keras.layers.Dropout(0.5),
                                keras.layers.Dense(3, activation="softmax")])
        net.compile("sgd", "categorical_crossentropy")
        return net, batches.ArrayBatches(x, y, 3, 16, "float32", 5, augment)

    def weights(net):
        return np.concatenate([np.ravel(w) for w in net.get_weights()])

    net, train = fresh()
    net.fit(train, epochs=4, verbose=0, shuffle=False)
    straight = weights(net)
    folder = tmp_path / "checkpoint"
    net, train = fresh()
    net.fit(train, epochs=2, verbose=0, shuffle=False,
            callbacks=[checkpoint.EpochCheckpoint(folder)])
    net, train = fresh()
    start = checkpoint.restore(net, folder)
    train.start_at(start)
    net.fit(train, initial_epoch=start, epochs=4, verbose=0, shuffle=False)
    assert start == 2
    np.testing.assert_array_equal(weights(net), straight)


@pytest.mark.parametrize("damage", ["truncated", "one state fewer"])
def test_random_states_that_cannot_be_restored_keep_the_checkpoint_s_epochs(tmp_path, damage):
    """The weights load first; random states that cannot be restored (a damaged file, a
    model whose code lost a Dropout) resume after the checkpoint's epoch with fresh ones
    and a warning, never from epoch 0 on trained weights."""
    import numpy as np

    from greenscreen_pipeline.run import checkpoint

    def net(dropouts=2):
        keras.utils.set_random_seed(1)
        layers = [keras.Input((4,)), keras.layers.Dense(8)]
        layers += [keras.layers.Dropout(0.5) for _ in range(dropouts)]
        model = keras.Sequential([*layers, keras.layers.Dense(2)])
        model.compile("sgd", "mse")
        return model

    x, y = np.ones((32, 4), "float32"), np.zeros((32, 2), "float32")
    trained, folder = net(), tmp_path / "checkpoint"
    trained.fit(x, y, epochs=2, verbose=0, callbacks=[checkpoint.EpochCheckpoint(folder)])
    seeds = folder / "epoch-00002" / checkpoint.SEEDS
    if damage == "truncated":
        seeds.write_bytes(seeds.read_bytes()[:20])
    again = net() if damage == "truncated" else net(dropouts=1)
    with pytest.warns(RuntimeWarning, match="resumes after epoch 2 with its weights and fresh"):
        assert checkpoint.restore(again, folder) == 2
    for got, want in zip(again.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert folder.exists()  # not set aside


def test_a_diverged_epoch_is_not_checkpointed_and_its_epoch_is_the_run_s(tmp_path):
    """An epoch whose loss went NaN was checkpointed; `--retry-failed` resumed from those
    NaN weights past it, trained nothing, and recorded the broken model as done. The
    epoch named by the failure counts from the run's first, not the attempt's."""
    import numpy as np

    from greenscreen_pipeline.run import checkpoint, recipe

    keras.utils.set_random_seed(1)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    net.compile(keras.optimizers.SGD(1e30), "mse")
    x, y = np.full((32, 4), 1e3, "float32"), np.ones((32, 2), "float32")
    folder = tmp_path / "checkpoint"
    history = net.fit(x, y, epochs=6, verbose=0, initial_epoch=1,
                      callbacks=[checkpoint.EpochCheckpoint(folder),
                                 keras.callbacks.TerminateOnNaN()])
    losses = history.history["loss"]
    assert not np.isfinite(losses[-1])
    diverged = 1 + len(losses)  # the run's epoch (1-based) whose loss is NaN
    # The last checkpoint is of the epoch before: a retry resumes there and diverges again.
    assert checkpoint.restore(net, folder) == (diverged - 1 if diverged > 2 else 0)
    assert all(np.isfinite(w).all() for w in net.get_weights())
    with pytest.raises(recipe.Diverged, match=rf"in epoch {diverged}$"):
        recipe.finite(history, start=1)
