"""The `greenscreen` command: one parser of subcommands, and the one place where errors
become a message and an exit code.

    greenscreen sweep [local|slurm|ray] [options]   train config.yaml's runs, one folder each
    greenscreen analyze | final | report [options]  the later stages (they read run folders)
    greenscreen all [local|slurm|ray] [options]     sweep, analyze, final and report
    greenscreen check | run-one | meters | gpu-check

`./greenscreen.sh` sets up .venv and then runs this command. Every subcommand imports
what it needs when it runs, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading

from greenscreen import __version__

from . import commands
from .errors import MissingDependency, PipelineError, UsageError
from .executors import EXECUTORS
from .log import configure

STAGED = ("sweep", "all")  # the subcommands whose executor is a subcommand of their own


def _share(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N), with 0 <= K < N."""
    k, _, n = text.partition("/")
    try:
        share = int(k), int(n)
    except ValueError:
        share = None
    if share is None or not 0 <= share[0] < share[1]:
        raise argparse.ArgumentTypeError(f"{text!r} is not K/N with 0 <= K < N")
    return share


# An index (-1: CUDA's "no GPU"), or a UUID as nvidia-smi -L gives it.
GPU_ID = re.compile(r"-1|\d+|(GPU|MIG)-[0-9A-Za-z/-]+")


def _gpu_ids(text: str) -> str:
    """'0,1' or UUIDs: each an index or a GPU/MIG UUID, each once ('x,y' hid every GPU);
    empty: none given."""
    ids = [g.strip() for g in text.split(",") if g.strip()]
    bad = [g for g in ids if not GPU_ID.fullmatch(g)]
    if bad or len(set(ids)) != len(ids):
        why = (f"{bad[0]!r} is neither a GPU index nor a GPU-/MIG- UUID" if bad else
               "a GPU is named twice")
        raise argparse.ArgumentTypeError(f"{text!r}: {why}; e.g. --gpus 0,1")
    return ",".join(ids)


def _at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= {low}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def _config_options() -> argparse.ArgumentParser:
    """--config and the settings every stage may override."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("configuration")
    group.add_argument("--config", default="config.yaml",
                       help="the sweep's config.yaml (default: %(default)s)")
    group.add_argument("--sweep-dir", help="the sweep folder (default: settings.sweep_dir)")
    group.add_argument("--runs", type=_at_least(1), help="runs (default: settings.runs)")
    group.add_argument("--epochs", type=_at_least(1),
                       help="epochs per run (default: settings.epochs)")
    return common


def _where_options() -> argparse.ArgumentParser:
    """--config and --sweep-dir alone: for commands that read a sweep's folder, whose runs
    and epochs are the ones it was swept with, never overridden."""
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_argument_group("configuration")
    group.add_argument("--config", default="config.yaml",
                       help="the sweep's config.yaml (default: %(default)s)")
    group.add_argument("--sweep-dir", help="the sweep folder (default: settings.sweep_dir)")
    return where


def _training_options(common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The configuration options and those of every command that trains runs."""
    training = argparse.ArgumentParser(add_help=False, parents=[common])
    training.add_argument("--retry-failed", action="store_true", default=None,
                          help="train failed runs again (their energy so far is kept; a "
                               "checkpoint that no longer fits your model is set aside)")
    return training


def _probe_option(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--no-probe", action="store_true", help="do not call your own "
                        "dataset and model functions once before any run (the probe: "
                        "README, 'Your code, probed')")
    return parser


def _add_executors(stage: argparse.ArgumentParser, common: argparse.ArgumentParser,
                   report_out: bool) -> None:
    common = _probe_option(_training_options(common))
    executors = stage.add_subparsers(dest="executor", metavar="EXECUTOR", title="executors",
                                     description="local (the default), slurm or ray")
    local = executors.add_parser("local", parents=[common], help="worker slots on this "
                                 "machine, each training runs one after another in its warm "
                                 "worker process (the default)")
    local.add_argument("--workers", type=_at_least(1), default=1,
                       help="runs trained at once (default: %(default)s)")
    local.add_argument("--gpus", type=_gpu_ids, help="comma-separated GPU ids (indices or "
                       "UUIDs); worker k sees only GPU k (several workers may share one)")
    slurm = executors.add_parser("slurm", parents=[common], help="one Slurm job array, then a "
                                 "dependent analyze + final + report job")
    slurm.add_argument("--dry-run", action="store_true", help="write and print, do not submit")
    slurm.add_argument("--partition", help="default: settings.slurm_partition")
    slurm.add_argument("--time", help="time limit of each array task, e.g. 04:00:00: one "
                                      "run, or with --parallel N a task's share of the runs "
                                      "(default: settings.slurm_time)")
    slurm.add_argument("--account", help="default: settings.slurm_account")
    slurm.add_argument("--parallel", type=_at_least(0),
                       help="most runs at once (default: settings.slurm_parallel)")
    slurm.add_argument("--gpus-per-run", type=_at_least(0), default=1,
                       help="GPUs per run (default: %(default)s)")
    slurm.add_argument("--out", help="the report PDF the dependent job writes")
    ray = executors.add_parser("ray", parents=[common], help="one Ray actor per slot of the "
                               "cluster, each with its warm worker")
    ray.add_argument("--address", help="cluster address (default: settings.ray_address; "
                                       "none: a private local Ray instance on loopback)")
    ray.add_argument("--num-cpus", type=_at_least(1),
                     help="CPUs of the local Ray instance (default: all)")
    ray.add_argument("--cpus-per-run", type=_at_least(1), default=1,
                     help="CPUs per run (default: %(default)s)")
    ray.add_argument("--gpus-per-run", type=_at_least(0),
                     help="GPUs per run (default: 1 if the cluster has GPUs, else 0)")
    if report_out:
        for parser in (local, ray):
            parser.add_argument("--out", help="the report PDF (default: report/<sweep>.pdf)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="greenscreen", description="Energy-aware sweeps for Keras: train the "
        "configurations of config.yaml, analyse what drives energy, retrain the best and "
        "write a PDF report.", epilog="'greenscreen COMMAND --help' shows a command's options.")
    parser.add_argument("--version", action="version", version=f"greenscreen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _config_options()
    for name, text in (("all", "sweep, analyze, final and report, in order"),
                       ("sweep", "train every unfinished run of config.yaml")):
        stage = sub.add_parser(name, help=text, description=text + ". The executor is a "
                               "subcommand: local (the default), slurm or ray.")
        _add_executors(stage, common, report_out=name == "all")
    where = _where_options()  # analyze and report read the runs the sweep recorded
    analyze = sub.add_parser("analyze", parents=[where], help="rank the runs, find what "
                             "drives energy, recommend a configuration")
    analyze.add_argument("--component", choices=("gpu", "cpu", "dram"), default=None,
                         help="rank and analyse this component's measured energy instead of "
                         "the total (runs that did not measure it, or only estimated it, are "
                         "left out)")
    analyze.add_argument("--out", metavar="DIR", help="write analysis.json and the tables "
                         "into DIR (default: the sweep folder; e.g. for a read-only archive)")
    final = sub.add_parser("final", parents=[_training_options(common)], help="train the "
                           "recommended "
                           "configuration for settings.final_epochs")
    final.add_argument("--if-complete", action="store_true", help="only once every run of "
                       "the sweep is through (Slurm's report job: after a cancelled or "
                       "timed-out array, final waits for the runs' resubmission); runs a "
                       "spent settings.budget holds back are not waited for")
    report = sub.add_parser("report", parents=[where], help="write the PDF report")
    report.add_argument("--out", help="the PDF to write (default: report/<sweep>.pdf)")
    report.add_argument("--analysis", metavar="DIR", help="the folder `analyze --out DIR` "
                        "wrote, or its analysis.json (default: the sweep folder); the report "
                        "reads the runs of the sweep that analysis was made from")
    _probe_option(sub.add_parser("check", parents=[common], help="validate config.yaml, "
                                 "probe your own code once (--no-probe: do not), and exit"))
    run_one = sub.add_parser("run-one", parents=[_training_options(common)],
                             help="claim and train one run, or "
                             "a share of the runs (a Slurm array task, or by hand)")
    which = run_one.add_mutually_exclusive_group(required=True)
    which.add_argument("--index", type=_at_least(0), help="the run to train")
    which.add_argument("--share", type=_share, metavar="K/N", help="train runs K, K+N, K+2N, "
                       "... one after another in one warm worker")
    status = sub.add_parser("status", parents=[common],
                            help="where the sweep stands: runs done, running, parked, "
                            "failed and why, the energy spent and the budget (starts nothing)")
    status.add_argument("--json", action="store_true", help="print it as one JSON object")
    sub.add_parser("meters", help="list the power sources this machine offers, and why the "
                   "others are unavailable")
    # Its options, --help included, are benchmarks/gpu_check.py's: passed on, listed there.
    sub.add_parser("gpu-check", add_help=False, help="every power source against NVML's "
                   "energy counter on a real GPU (benchmarks/gpu_check.py; a checkout only)")
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    """The subcommand and its options; gpu-check passes what it does not know on."""
    parser = build_parser()
    args, extra = parser.parse_known_args(normalize(argv))
    if extra and args.command != "gpu-check":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.passed_on = extra
    _settle_workers(parser, args)
    return args


def _settle_workers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """More --gpus than --workers is refused: the extra GPUs trained nothing while the
    sweep's meter measured them."""
    if getattr(args, "executor", None) != "local" or not hasattr(args, "workers"):
        return
    gpus = args.gpus.split(",") if args.gpus else []
    if len(gpus) > args.workers:
        parser.error(f"--gpus names {len(gpus)} GPUs for --workers {args.workers}: worker k "
                     f"sees only GPU k, so {', '.join(gpus[args.workers:])} would train "
                     f"nothing; give --workers {len(gpus)}, or only the GPUs the workers use "
                     f"(--gpus {','.join(gpus[:args.workers])})")


# What each command imports of pyproject's "pipeline" extra, by module name. `pip install
# .` alone installs the `greenscreen` command too: a sweep then failed every run (no wrapt
# in its worker) and `report` with a traceback (no reportlab). A Slurm submission trains
# nothing here: its login node needs none of it.
TRAINING = ("sklearn", "PIL", "wrapt", "optuna")
ANALYSIS = ("sklearn", "scipy", "statsmodels")
REPORT = (*ANALYSIS, "matplotlib", "seaborn", "reportlab")
NEEDS = {"sweep": TRAINING, "run-one": TRAINING, "final": TRAINING, "analyze": ANALYSIS,
         "report": REPORT, "all": (*TRAINING, *REPORT)}


def check_extra(command: str, executor: str | None = None) -> None:
    """Raises MissingDependency, before any work, where `command` needs a package of the
    pipeline's that is not installed."""
    import importlib.util

    needed = () if executor == "slurm" and command == "sweep" else NEEDS.get(command, ())
    missing = [m for m in dict.fromkeys(needed) if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingDependency(
            f"greenscreen {command} needs the pipeline's packages, and {', '.join(missing)} "
            "is not installed: pip install 'greenscreen[pipeline]' (from a checkout: "
            "pip install '.[pipeline]'), or use ./greenscreen.sh, which sets them up")


# Keras's backends by the names KERAS_BACKEND takes; the commands that import one.
KERAS_BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")
IMPORTS_BACKEND = ("sweep", "run-one", "final", "all", "check", "gpu-check")


def check_backend(command: str) -> None:
    """Raises UsageError, before any work, where KERAS_BACKEND names no Keras backend and
    `command` would import it: every run failed with "worker exited with code 1", and
    `check` said "valid" and then ended in a traceback."""
    from greenscreen.validation import did_you_mean

    given = os.environ.get("KERAS_BACKEND")
    if command in IMPORTS_BACKEND and given and given not in KERAS_BACKENDS:  # "": Keras's
        near = did_you_mean(given.lower(), KERAS_BACKENDS)
        raise UsageError(f"KERAS_BACKEND={given!r} is not valid; allowed: "
                         f"{', '.join(KERAS_BACKENDS)}{near}")


def normalize(argv: list[str]) -> list[str]:
    """`sweep` and `all` without an executor mean the local one."""
    if "--executor" in argv:
        raise UsageError("--executor is a subcommand now: greenscreen sweep local|slurm|ray "
                         "[options], e.g. greenscreen sweep slurm --dry-run")
    if argv and argv[0] in STAGED:
        rest = argv[1:]
        if not rest or rest[0] not in (*EXECUTORS, "-h", "--help"):
            return [argv[0], "local", *rest]
    return argv


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Runs one subcommand; returns its exit code (2: bad usage or config, 130: stopped)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow's start-up chatter (CUDA stubs, CPU features) is not ours to show; your own
    # code named in config.yaml may import it while `check` validates the entries.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    configure()
    # SIGTERM as SIGINT until a command installs its own stop (`executors/stop.py`): a
    # sweep in its probe, or any command before its workers start, ended with no word.
    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        args = parse(argv)
        check_extra(args.command, getattr(args, "executor", None))
        check_backend(args.command)
        return commands.run(args) or 0
    except PipelineError as exc:
        print(f"greenscreen: {exc.prefix}{exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("greenscreen: stopped", file=sys.stderr, flush=True)
        return 130
    except BrokenPipeError:  # `greenscreen status --json | head`: the reader left early
        # Python would print a traceback on its own flush at exit: nothing more is written.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process ended by SIGPIPE
    finally:
        if main_thread:  # a caller's own (`cli.main` called in a test's process)
            signal.signal(signal.SIGTERM, before)
