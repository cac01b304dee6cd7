"""Loads and the reference for the real-GPU check: JAX matmul patterns and the NVML counter."""

from __future__ import annotations

import math
import time


def schedule(scale: float) -> list[tuple]:
    """(window, load seconds, pattern, idle tail seconds) in the order they run."""
    return [
        ("idle", 10 * scale, "off", 0.0),
        ("steady", 20 * scale, "on", 0.0),
        ("square_2s", 20 * scale, ("square", 2.0 * scale), 0.0),
        ("square_0.5s", 20 * scale, ("square", 0.5 * scale), 0.0),
        # A 0.3 s burst shows up in a 1-s-averaged power field up to ~1 s late: the
        # window takes a 2 s idle tail so every source can see all of it.
        ("burst_0.3s", 0.3 * scale, "on", 2.0 * scale),
    ]


class MatmulLoad:
    """Keeps the default JAX device busy with chained matrix products, or idle."""

    def __init__(self) -> None:
        import jax
        import jax.numpy as jnp

        self.device = jax.devices()[0]
        self.n = 8192 if self.device.platform == "gpu" else 256
        key = jax.random.PRNGKey(0)
        self.a = jax.random.normal(key, (self.n, self.n), jnp.bfloat16)
        self.step = jax.jit(lambda a: (a @ a) * (1.0 / self.n))
        self.step(self.a).block_until_ready()  # compile outside every window

    def describe(self) -> dict:
        return {"device": str(self.device), "platform": self.device.platform,
                "matmul": f"{self.n}x{self.n} bf16"}

    def busy(self, until: float) -> None:
        a = self.a
        while time.time() < until:
            a = self.step(a)
            a.block_until_ready()

    def run(self, pattern, seconds: float) -> None:
        end = time.time() + seconds
        if pattern == "off":
            time.sleep(seconds)
        elif pattern == "on":
            self.busy(end)
        else:  # ("square", period): on for half a period, off for the other half
            period = pattern[1]
            while time.time() < end:
                self.busy(min(end, time.time() + period / 2))
                time.sleep(max(0.0, min(end - time.time(), period / 2)))


class Counter:
    """NVML's total-energy counter summed over the visible GPUs, in joules: the reference."""

    def __init__(self) -> None:
        self.handles, self.reason, self.nv = [], None, None
        try:
            import pynvml as nv

            nv.nvmlInit()
            self.nv = nv
            self.handles = [nv.nvmlDeviceGetHandleByIndex(i)
                            for i in range(nv.nvmlDeviceGetCount())]
            self.read()
        except Exception as exc:  # no bindings, no driver, pre-Volta: say which
            self.handles, self.reason = [], f"{type(exc).__name__}: {exc}"
        if not self.handles and self.reason is None:
            self.reason = "NVML lists no GPUs"

    @classmethod
    def unavailable(cls, reason: str) -> "Counter":
        """A counter that reads NaN, for when setting one up failed."""
        counter = cls.__new__(cls)
        counter.handles, counter.reason, counter.nv = [], reason, None
        return counter

    @property
    def available(self) -> bool:
        return bool(self.handles)

    def describe(self) -> dict:
        return {"available": self.available, "reason": self.reason}

    def read(self) -> float:
        if not self.handles:
            return math.nan
        return sum(self.nv.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles) / 1e3

    def close(self) -> None:
        if self.nv is not None:
            try:
                self.nv.nvmlShutdown()
            except Exception:
                pass
