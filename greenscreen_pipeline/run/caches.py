"""Compilation caches in a folder of the sweep, so that a program compiled for one run is
not compiled again for another run of the same shape, in this worker or the next.

- JAX: its persistent compilation cache (`JAX_COMPILATION_CACHE_DIR`; every program
  cached, however quick its compile was).
- TensorFlow: XLA's persistent cache for `jit_compile` (`--tf_xla_persistent_cache_directory`
  in `TF_XLA_FLAGS`), which only runs with `internal: jit_compilation` use.
- Keras 3 keeps no compilation cache of its own; PyTorch runs eagerly here.

Both are read when the backend starts, so they are set in the environment of the worker
or run process when it is started. JAX's documentation: the cache holds compiled code
that JAX loads and runs, so trust it as your own code; greenscreen never reads it
otherwise, and a sweep folder you share should leave `.cache/` out.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER = ".cache"


def folder_of(sweep_dir: str, final: bool) -> Path:
    """The sweep's cache folder (the final run trains in <sweep>/final/, and shares it)."""
    sweep = Path(sweep_dir).resolve()
    return (sweep.parent if final else sweep) / FOLDER


def environment(cache: Path, base: dict | None = None) -> dict[str, str]:
    """The variables that turn the caches on in `cache` (over `base`, default os.environ);
    a cache already set by the user is kept."""
    base = os.environ if base is None else base
    out = {}
    if "JAX_COMPILATION_CACHE_DIR" not in base:
        out.update(JAX_COMPILATION_CACHE_DIR=str(cache / "jax"),
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    flags = base.get("TF_XLA_FLAGS", "")
    if "tf_xla_persistent_cache_directory" not in flags:
        xla = f"--tf_xla_persistent_cache_directory={cache / 'xla'}"
        out["TF_XLA_FLAGS"] = f"{flags} {xla}".strip()
    return out
