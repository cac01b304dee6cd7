"""What a warm worker puts back between runs, so that a run's result does not depend on
what ran before it in the same process, and what it cannot put back.

Reset before every run:
- Keras's global state: `keras.backend.clear_session()` (layer names, the global seed
  generator, the dtype policy, flash attention, safe mode, TensorFlow's graph), and the
  settings Keras keeps outside it (`KERAS_SETTINGS`: the float type, epsilon, the image
  data format, `max_epochs`, `max_steps_per_epoch`) back to their values when the worker
  imported Keras, before any of your code ran (`remember_keras_settings`); the backend's
  process-wide switches likewise (JAX's config; TensorFlow's eager functions, XLA
  autoclustering, TF32, op determinism and NaN checks; PyTorch's default dtype,
  deterministic algorithms, matmul precision and cuDNN flags), and NumPy's `seterr`
  (`switches`). Where a run changed them (other than to the float type the pipeline
  sets for its precision, `set_for_run`) and also imported a package that stays loaded
  (not one of yours, `forget_own`), the worker retires instead (`retire_reason`):
  the package may have set them when imported, which later runs would not repeat. The
  worker imports before its first run what every run imports (the run path, NVML's
  bindings), so that only a run's own imports count.
  `train_run` then seeds Python, NumPy and the backend (`seeding.seed_run`).
- The environment variables, the working folder, `sys.path` and the warning filters, as
  they were when the worker started; a warning shown once in an earlier run is shown
  again (greenscreen's "once per distinct fault" is per run).
- Your own modules (imported since the worker started from the config's folder, the
  working folder or a folder your code added to `sys.path`; pure Python, not installed):
  dropped from `sys.modules`, so each run imports them afresh, module-level state and
  your edits included, as a fresh process would.
- The run process's stop request (`interrupt.requested`).

Fixed when a process starts, so a run that needs another value gets a process of its own
(`execute.needs_own_process`) or is the same for every run of a sweep:
- JAX's 64-bit mode (`JAX_ENABLE_X64`, precision float64 on JAX): its own process, unless
  the pipeline's rules skip the run anyway (`rules.combination_reason`).
- The Keras backend (`KERAS_BACKEND`), the visible GPUs (`CUDA_VISIBLE_DEVICES`, fixed per
  worker slot), XLA's and TensorFlow's flags read at import (`XLA_FLAGS`, `TF_XLA_FLAGS`),
  TensorFlow's thread pools and GPU memory growth: one value for the whole sweep.
"""

from __future__ import annotations

import os
import sys
import warnings

from . import interrupt, own_modules


class ProcessState:
    """The environment, working folder, `sys.path` and imported modules at the worker's
    start."""

    def __init__(self) -> None:
        self.environ = dict(os.environ)
        self.cwd = os.getcwd()
        self.path = list(sys.path)
        self.warning_filters = list(warnings.filters)
        self.modules = frozenset(sys.modules)  # what the worker itself imported
        if "keras" in sys.modules:
            remember_keras_settings()

    def restore(self, config_dir: str | None = None) -> None:
        """Forgets your modules (`forget_own`), then puts back the environment, folder,
        `sys.path`, warning filters and signal handlers."""
        self.forget_own(config_dir)  # first: it reads the folders the run added to sys.path
        if os.getcwd() != self.cwd:
            os.chdir(self.cwd)
        if dict(os.environ) != self.environ:
            os.environ.clear()
            os.environ.update(self.environ)
        if sys.path != self.path:  # folders your code added: a later run adds its own
            sys.path[:] = self.path
        # The warning filters as at the start, and every warning shown once is shown again
        # (a new filter renews Python's record of them), as in a new process.
        warnings.simplefilter("default")
        warnings.filters[:] = self.warning_filters
        interrupt.requested.clear()
        # A stop handled in the last run left SIGTERM and SIGINT ignored (`handle`): where
        # that run swallowed its KeyboardInterrupt, the worker ignored every later stop.
        interrupt.install()
        interrupt.unhold()  # a hold an earlier run left (its loop caught a fault inside it)

    def forget_own(self, config_dir: str | None = None) -> list[str]:
        """Drops your modules imported since the worker started (`own_modules`): from the
        config's folder, the worker's working folder or a folder your code added to
        `sys.path` (only the config's folder was, and a module of yours found elsewhere
        kept its module-level state from run to run). Returns their names."""
        added = [p for p in sys.path if p not in self.path]
        return own_modules.forget([config_dir, self.cwd, *added], self.modules)


# Keras's settings kept in module variables, which clear_session leaves as they are (those
# in its global state it clears); set through keras.config.set_<name> (where the installed
# Keras has it: max_epochs and max_steps_per_epoch came with Keras 3.10).
KERAS_SETTINGS = ("floatx", "epsilon", "image_data_format", "max_epochs", "max_steps_per_epoch")
_at_start: dict = {}  # `switches()` before your code ran
_set_for_run: dict = {}  # name -> value: what the pipeline set for the current run


def switches() -> dict:
    """name -> value, now: Keras's settings (`KERAS_SETTINGS`) and the backend's
    process-wide switches that change what a run computes or how fast: JAX's whole config
    (jit off, matmul precision, NaN checks, ...); TensorFlow's eager functions, XLA
    autoclustering (its raw value: None lets TF_XLA_FLAGS decide, False turns it off),
    TF32 matmuls, op determinism and NaN checks (`enable_check_numerics`, which would turn a
    later run's NaN into an error); PyTorch's default dtype, deterministic algorithms,
    float32 precision (TF32, bf16: legacy and per-backend settings) and cuDNN's benchmark
    and deterministic flags; and
    NumPy's floating-point error handling (`numpy.seterr`: "raise" would fail a later
    run)."""
    import keras
    import numpy

    out = {name: getattr(keras.config, name)() for name in KERAS_SETTINGS
           if hasattr(keras.config, f"set_{name}")}
    out["numpy.seterr"] = tuple(sorted(numpy.geterr().items()))
    if keras.backend.backend() == "jax":
        import jax

        out.update({f"jax.config.{name}": value for name, value in jax.config.values.items()})
    elif keras.backend.backend() == "tensorflow":
        out.update(_tensorflow_switches())
    elif keras.backend.backend() == "torch":
        import torch

        out["torch.set_default_dtype"] = torch.get_default_dtype()
        out["torch.use_deterministic_algorithms"] = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled())
        out["torch float32 precision"] = _torch_precision()
        out["torch.backends.cudnn.benchmark"] = torch.backends.cudnn.benchmark
        out["torch.backends.cudnn.deterministic"] = torch.backends.cudnn.deterministic
    return out


# Where PyTorch sets float32's precision (TF32, bf16) per backend, with its newer API.
_TORCH_FP32 = ("", "cuda.matmul", "cudnn", "cudnn.conv", "cudnn.rnn", "mkldnn",
               "mkldnn.matmul", "mkldnn.conv", "mkldnn.rnn")


def _torch_backend(path: str):
    import torch

    obj = torch.backends
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part, None)
    return obj


def _torch_precision() -> tuple:
    """PyTorch's float32 precision: (the legacy matmul precision, or None where the newer
    API was used, after which the legacy getter raises; the newer API's `fp32_precision`
    per backend, where the installed torch has it; else the legacy TF32 flags)."""
    import torch

    try:
        legacy = torch.get_float32_matmul_precision()
    except RuntimeError:  # "a mix of the legacy and new APIs"
        legacy = None
    new = tuple((path, backend.fp32_precision) for path in _TORCH_FP32
                if hasattr(backend := _torch_backend(path), "fp32_precision"))
    flags = () if new else (torch.backends.cuda.matmul.allow_tf32,
                            torch.backends.cudnn.allow_tf32)
    return legacy, new, flags


def _set_torch_precision(value: tuple) -> None:
    """Puts back `_torch_precision()`: the legacy setting first (it sets some of the newer
    ones), then every newer one, so that both read as they did."""
    import torch

    legacy, new, flags = value
    if legacy is not None:
        torch.set_float32_matmul_precision(legacy)
    for path, precision in new:
        _torch_backend(path).fp32_precision = precision
    if flags:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


def _tensorflow_switches() -> dict:
    """TensorFlow's: eager functions, XLA autoclustering, TF32 matmuls (GPUs), and op
    determinism and NaN checks, which TensorFlow reads only in private modules: a
    TensorFlow version that moved them leaves those two out rather than failing the
    worker."""
    import tensorflow as tf
    from tensorflow.python.eager import context

    out = {"tf.config.run_functions_eagerly": tf.config.functions_run_eagerly(),
           "tf.config.optimizer.jit": getattr(context.context(), "_optimizer_jit", None),
           "tf.config.experimental.enable_tensor_float_32_execution":
               tf.config.experimental.tensor_float_32_execution_enabled()}
    try:
        from tensorflow.python.debug.lib import check_numerics_callback
        from tensorflow.python.framework import config as tf_config

        determinism = tf_config.is_op_determinism_enabled()
        # Kept per thread; runs are trained in the worker's main thread.
        numerics = getattr(check_numerics_callback._state, "check_numerics_callback",
                           None) is not None
    except (ImportError, AttributeError):
        return out
    out["tf.config.experimental.enable_op_determinism"] = determinism
    out["tf.debugging.enable_check_numerics"] = numerics
    return out


def _set(name: str, value) -> None:
    import keras

    if name == "numpy.seterr":
        import numpy

        numpy.seterr(**dict(value))
    elif name.startswith("jax.config."):
        import jax

        jax.config.update(name.removeprefix("jax.config."), value)
    elif name == "tf.config.run_functions_eagerly":
        import tensorflow as tf

        tf.config.run_functions_eagerly(value)
    elif name == "tf.config.optimizer.jit":
        from tensorflow.python.eager import context

        context.context().optimizer_jit = value  # the raw value, None included
    elif name == "tf.config.experimental.enable_op_determinism":
        from tensorflow.python.framework import config as tf_config

        (tf_config.enable_op_determinism if value else tf_config.disable_op_determinism)()
    elif name == "tf.debugging.enable_check_numerics":
        import tensorflow as tf

        (tf.debugging.enable_check_numerics if value else tf.debugging.disable_check_numerics)()
    elif name == "torch.set_default_dtype":
        import torch

        torch.set_default_dtype(value)
    elif name == "torch.use_deterministic_algorithms":
        import torch

        torch.use_deterministic_algorithms(value[0], warn_only=value[1])
    elif name == "torch float32 precision":
        _set_torch_precision(value)
    elif name.startswith("torch.backends.cudnn."):
        import torch

        setattr(torch.backends.cudnn, name.rpartition(".")[2], value)
    elif name == "tf.config.experimental.enable_tensor_float_32_execution":
        import tensorflow as tf

        tf.config.experimental.enable_tensor_float_32_execution(value)
    else:
        getattr(keras.config, f"set_{name}")(value)


def remember_keras_settings() -> None:
    """Remembers `switches()` as they are now, once per process: called before any of your
    code runs (the worker's start, the probe's)."""
    if not _at_start:
        _at_start.update(switches())


def changed_switches() -> list[str]:
    """The settings and switches (`switches()`) that differ now from before your code ran."""
    return _changed(switches()) if _at_start else []


def _changed(now: dict) -> list[str]:
    return [name for name, value in _at_start.items() if now.get(name) != value]


def set_for_run(name: str, value) -> None:
    """Records that the pipeline itself set switch `name` to `value` for this run (the float
    type of its precision): a change no package made when imported, put back as any other
    before the next run, and no reason to retire the worker."""
    _set_for_run[name] = value


def reset_keras() -> None:
    """Keras's global state back to a new process's: the session, and the settings Keras
    and its backend keep outside it as they were before your code ran.

    Without a forced garbage collection (`free_memory=False`): it costs a quarter of a
    second a run with TensorFlow loaded, Python's own collector frees the last run's
    objects soon enough, and the worker's memory bound catches what it does not."""
    import keras

    keras.backend.clear_session(free_memory=False)
    _set_for_run.clear()
    remember_keras_settings()  # where nothing remembered them before: as they are now
    for name in changed_switches():  # only what a run changed: most cannot change later
        try:
            _set(name, _at_start[name])
        except Exception as exc:  # a switch the backend fixes once it has started
            print(f"greenscreen worker: could not put back {name}={_at_start[name]!r} after "
                  f"a run changed it ({exc}); isolate_runs: true avoids it", file=sys.stderr)
    keras.config.set_dtype_policy(_at_start["floatx"])


def packages() -> set[str]:
    """The top-level packages imported in this process."""
    return {name.partition(".")[0] for name in list(sys.modules)}


def retire_reason(before: set[str], state: "ProcessState | None",
                  config_dir: str | None = None) -> str | None:
    """Why a worker must train no other run after this one (None: it may): the run changed
    Keras's settings or the backend's switches (other than to what the pipeline set for
    it: `set_for_run`) and imported a package that stays loaded
    (`before`: `packages()` when the run began; yours, `state.forget_own`'s, are
    imported afresh for each run and do not count). That package may have made the
    change when it was imported: put back, later runs, which do not import it again,
    would lack it, where a new process has it."""
    now = switches() if _at_start else {}
    changed = [name for name in _changed(now) if name not in _set_for_run
               or now.get(name) != _set_for_run[name]]
    if not changed:
        return None
    if state is not None:
        state.forget_own(config_dir)
    new = sorted(packages() - before, key=lambda name: (_installed(name), name))
    if not new:
        return None
    more = f" and {len(new) - 3} more" if len(new) > 3 else ""
    return (f"its run changed {', '.join(changed[:3])} and imported {', '.join(new[:3])}"
            f"{more}, which stay loaded: a new worker gives the next run what a new process "
            "would")


def _installed(package: str) -> bool:
    """Whether a package lies in the environment (those not are named first: yours)."""
    path = getattr(sys.modules.get(package), "__file__", None) or ""
    return not path or path.startswith(own_modules.installed_prefixes())


def rss_mb() -> float:
    """This process's resident memory (VmRSS), in MiB; NaN where /proc does not say."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def gpu_memory_mb() -> float | None:
    """GPU memory the backend holds now, in MiB, where it says (None otherwise)."""
    import keras

    try:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_logical_devices("GPU")
            return sum(tf.config.experimental.get_memory_info(d.name)["current"]
                       for d in gpus) / 2**20 if gpus else None
        if keras.backend.backend() == "jax":
            import jax

            stats = [d.memory_stats() for d in jax.local_devices() if d.platform == "gpu"]
            return sum(s.get("bytes_in_use", 0) for s in stats if s) / 2**20 if stats else None
        if keras.backend.backend() == "torch":
            import torch

            return torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else None
    except Exception:  # a backend that cannot say: no bound on GPU memory
        return None
    return None
