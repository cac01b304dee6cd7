"""Shared fixtures: the fake nvidia-smi executable and its scripted traces."""

import json
import math
import os
import shutil
import sys
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")

# XLA (JAX's compiler, and TensorFlow's with jit_compile) compiles each test's programs
# for a few steps on a few samples: LLVM's optimisation of the machine code costs more
# there than it saves. Level 0 compiles the same programs with less optimised code
# (the whole JAX pass: 431 -> 317 s on two cores, every file faster;
# benchmarks/RESULTS.md). Set before any test imports a backend; subprocesses inherit it;
# an XLA_FLAGS of your own is kept.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.backends(...)`: the Keras backends a test runs under; skipped under others.

    `./greenscreen.sh test` runs the whole suite under TensorFlow, then the tests
    marked `backends` again under JAX (and PyTorch where it is installed).

    The longest tests go first (their seconds in tests/durations.json, from
    `benchmarks/suite_durations.py --order`; the others keep their order after them):
    pytest-xdist hands tests out in this order, one at a time (`--maxschedchunk 1`, set by
    ./greenscreen.sh test), so no long test starts last and leaves the other workers idle
    at the end of a pass.
    """
    try:
        seconds = json.loads(DURATIONS.read_text())
    except (OSError, ValueError):
        seconds = {}
    items.sort(key=lambda item: -seconds.get(item.nodeid, 0.0))  # stable: the rest in order
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    for item in items:
        marker = item.get_closest_marker("backends")
        if marker is not None and backend not in marker.args:
            item.add_marker(pytest.mark.skip(
                reason=f"runs under {', '.join(marker.args)}; KERAS_BACKEND is {backend}"))


FAKE_SMI = Path(__file__).parent / "bin" / "nvidia-smi"
UUID0 = "GPU-00000000-1111-2222-3333-444444444444"
UUID1 = "GPU-55555555-6666-7777-8888-999999999999"


def trace_energy(spec: dict, a: float, b: float) -> float:
    """Closed-form integral of the fake's power trace over [a, b] (joules)."""
    t0, period = spec.get("t0", 0.0), spec.get("period", 1.0)
    base, amp, slope = spec.get("base", 100.0), spec.get("amp", 0.0), spec.get("slope", 0.0)
    w = 2 * math.pi / period
    sine = -amp / w * (math.cos(w * (b - t0)) - math.cos(w * (a - t0)))
    return base * (b - a) + sine + slope / 2 * ((b - t0) ** 2 - (a - t0) ** 2)


class FakeSmi:
    """Writes the fake's JSON config; tests change it before starting a meter."""

    def __init__(self, path: Path, exe: Path) -> None:
        self.path, self.exe = path, exe

    def configure(self, gpus: list, **faults) -> dict:
        cfg = {"gpus": gpus, **faults}
        self.path.write_text(json.dumps(cfg))
        return cfg


def make_fake_smi(folder: Path) -> tuple[FakeSmi, dict]:
    """A private copy of the fake nvidia-smi in `folder`, and the environment that selects
    it (GREENSCREEN_NVIDIA_SMI, FAKE_SMI_CONFIG) with no RAPL either, whatever this machine
    has: "auto" measures the fake GPUs alone. The private path lets a test find exactly
    its own processes in /proc."""
    exe = folder / "bin" / "nvidia-smi"
    exe.parent.mkdir(parents=True)
    # The interpreter itself, not `env python3`: where python3 is a shim (pyenv: bash
    # scripts) each call of the fake cost ~50 ms of CPU more, 20 s over the suite. And
    # without `site` (-S; the fake needs the standard library only): the meters' process
    # polls start the fake some 3,000 times a TensorFlow pass, and `site` with its .pth
    # files cost 30 to 40 ms of CPU each call here.
    source = FAKE_SMI.read_text().split("\n", 1)[1]
    exe.write_text(f"#!{os.path.realpath(sys.executable)} -S\n{source}")
    os.chmod(exe, 0o755)
    cfg = folder / "fake_smi.json"
    env = {"GREENSCREEN_NVIDIA_SMI": str(exe), "FAKE_SMI_CONFIG": str(cfg),
           "GREENSCREEN_POWERCAP_ROOT": str(folder / "no-powercap")}
    fake = FakeSmi(cfg, exe)
    fake.configure([{"uuid": UUID0, "name": "NVIDIA H200", "power": {"base": 150.0}},
                    {"uuid": UUID1, "name": "NVIDIA H200", "power": {"base": 250.0}}])
    return fake, env


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    """The fake nvidia-smi of make_fake_smi, selected in this test's environment."""
    fake, env = make_fake_smi(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return fake


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory, worker_id) -> Path:
    """A folder every xdist worker of this test run sees (the workers' common base
    temp), or this session's own without xdist: where `build_once` keeps its folders."""
    base = tmp_path_factory.getbasetemp()
    return (base if worker_id == "master" else base.parent) / "shared"


def build_once(root: Path, name: str, build) -> Path:
    """`root/name`, built by `build(folder)` for the first test of this test run that asks
    and read by the others, whichever xdist worker they run on (a file lock orders them).
    What is expensive and only read (a finished sweep) is built once per run; a test that
    changes the folder copies it first. A build that fails leaves no marker: the next test
    that asks builds it again, and fails alike."""
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    folder, built = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            built.write_text("")
    return folder


def processes_running(exe: Path, streams_only: bool = False) -> list[int]:
    """PIDs of live (non-zombie) processes whose command line names `exe`; with
    `streams_only`, the meter's nvidia-smi streams (`--loop-ms`) alone, not the one-off
    queries (the process listing) that may be alive at any moment while a meter runs."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(exe) in cmdline and state != "Z" and (
                not streams_only or "--loop-ms" in cmdline):
            pids.append(int(entry.name))
    return pids


def zombie_children() -> list[int]:
    """Zombie processes whose parent is this test process."""
    me, zombies = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == me:
                zombies.append(int(entry.name))
    return zombies
