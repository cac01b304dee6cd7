"""The pipeline's rules on a run's configuration that need no backend: combinations that
cannot work, skipped before any training.

`recipe.skip_reason` applies them beside the rules that ask the backend and the methods.
`execute.needs_own_process` asks them first: a run they skip is skipped in the warm
worker, not in a process started only for a setting it never uses (a float64 run with
random augmentation on JAX would otherwise start a fresh process, JAX's 64-bit mode on,
to be skipped there).
"""

from __future__ import annotations


def combination_reason(cfg: dict) -> str | None:
    """Why this combination of options cannot run, by the pipeline's own rules, or None."""
    precision = cfg.get("precision")
    if cfg.get("augmentation") == "random" and precision in ("float16", "float64"):
        return (f"augmentation random with precision {precision}: Keras's "
                "RandomRotation mixes float32 constants into its computation and fails under "
                f"a {precision} global float type")
    method = cfg.get("method", "standard")
    if method != "standard" and cfg.get("internal") == "pre_quantization":
        return (f"method {method} wraps the model's train step, which float8 "
                "quantized training (pre_quantization) does not support")
    return None


def epochs_reason(cfg: dict, epochs: int) -> str | None:
    """Why this configuration cannot run as itself for `epochs` epochs, or None: a gated
    run whose warm-up lasts the whole run trains every sample, a standard run recorded
    as gated (`--epochs 1` of the shipped config). Asked per run, with the epochs it
    trains for: a final run's are settings.final_epochs."""
    if cfg.get("method") == "gated" and cfg.get("warmup_epochs", 0) >= epochs:
        return (f"method gated with warmup_epochs {cfg['warmup_epochs']} over {epochs} "
                f"epoch(s): the warm-up trains every sample, so the run would never gate "
                "(fewer warm-up epochs, or more epochs, let it gate)")
    return None
