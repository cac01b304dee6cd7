"""What each subcommand of `greenscreen` does. `cli` parses; `run` dispatches here.

Each handler takes the parsed arguments, raises `errors.PipelineError` for anything the
user must fix, and returns an exit code (None: 0). Heavy modules are imported inside the
handlers, so `greenscreen --help` and `check` stay fast.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import budget, repeats, runnable, space
from .errors import WRITE_ERRORS, MissingDependency, RunsFailing, UsageError, cannot_write
from .executors import slots
from .log import logger

if TYPE_CHECKING:
    from .executors.workers import WorkerSlot

log = logger(__name__)
GPU_CHECK = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def run(args: argparse.Namespace) -> int | None:
    try:
        return HANDLERS[args.command](args)
    except OSError as exc:
        if exc.errno not in WRITE_ERRORS:
            raise
        raise UsageError(cannot_write(exc, args.command)) from None


# The commands that train or check a config before training: they need settings.data_path.
TRAINS = ("check", "sweep", "final", "all", "run-one")
STARTS_SWEEP = ("check", "sweep", "all")  # these check every partitioning value's split too


def load_config(args: argparse.Namespace) -> space.SweepConfig:
    """config.yaml with the command line's overrides of its settings."""
    option = lambda name: getattr(args, name, None)  # noqa: E731
    config = space.load(args.config, {
        "runs": option("runs"), "epochs": option("epochs"), "sweep_dir": option("sweep_dir"),
        "slurm_partition": option("partition"), "slurm_time": option("time"),
        "slurm_account": option("account"), "slurm_parallel": option("parallel"),
        "ray_address": option("address"), "retry_failed": option("retry_failed")})
    folder_or_none(Path(config.settings["sweep_dir"]), "--sweep-dir (settings.sweep_dir)")
    if args.command in TRAINS:
        runnable.check_trainable(config)
        space.check_data_path(config, class_sizes=args.command in STARTS_SWEEP,
                              keras_cache=getattr(args, "executor", None) not in ("slurm", "ray"))
    for said in runnable.unread_dimensions(config):
        log.warning("%s: %s", args.config, said)
    repeat = repeats.beyond_space(config.space, config.settings)  # ranges.repeats' words
    if repeat and budget.unbounded(config.settings):
        log.info("%s: settings.budget ends the sweep; past the space's %d configuration(s), "
                 "further runs train them again with another training seed", args.config,
                 config.size)
    elif repeat:  # said by check and by the sweep, before anything trains; once, not per run
        log.warning("%s: %s", args.config, repeat)
    return config


def check(args: argparse.Namespace) -> None:
    """Validates config.yaml, then probes your own code in this process (probe.py), unless
    --no-probe: then only the validation, which loads no Keras."""
    config = load_config(args)
    log.info("%s is valid: %d dimensions, %s x %d epochs", args.config,
             len(config.space), budget.runs_words(config.settings), config.settings["epochs"])
    if args.no_probe:
        log.info("no probe (--no-probe): your dataset and model functions were not called")
        return
    from .probe import probe

    log.info("%s", probe(config).text())


def probe_before_sweep(config: space.SweepConfig, args: argparse.Namespace,
                       sweep_dir: Path, slot: WorkerSlot | None) -> None:
    """The probe before a sweep's first run; a mistake stops the sweep before anything is
    trained (ProbeFailed, exit 2). In `slot` (`sweep local`'s first worker), or in a child
    process on this machine (Ray and Slurm). Skipped with --no-probe, where the config
    names no code of yours, and where every run is through (nothing would train: the
    probe's backend import would only delay "nothing to submit")."""
    from . import probe
    from .executors.attempt import to_train

    if args.no_probe or probe.needs_no_probe(config) or not to_train(config, sweep_dir):
        return
    if slot is None:
        log.info("%s", probe.in_child(config, slots.first_gpu(args)).text())
        return
    s = config.settings
    found = slot.probe(config.path, str(sweep_dir), s["runs"], s["epochs"])
    log.info("%s", probe.Probed(**found).raise_mistakes().text())


def sweep(args: argparse.Namespace) -> None:
    config = load_config(args)
    _sweep(config, Path(config.settings["sweep_dir"]), args)


def _sweep(config: space.SweepConfig, sweep_dir: Path, args: argparse.Namespace,
           first_slot: WorkerSlot | None = None) -> None:
    """The sweep stage; `first_slot`: `sweep local`'s first worker, kept by the caller
    (`all`), or None: one of its own, closed here."""
    refuse_search(config, args.executor)
    own = slots.first_worker(config, args) if first_slot is None else None
    try:
        _sweep_in(config, sweep_dir, args, first_slot or own)
    finally:
        if own is not None:
            own.close()


def _sweep_in(config: space.SweepConfig, sweep_dir: Path, args: argparse.Namespace,
              first_slot: WorkerSlot | None) -> None:
    from . import manifest

    s = config.settings
    if args.executor == "slurm" and not args.dry_run:  # before the probe's import
        from .executors.slurm import refuse_while_queued

        refuse_while_queued(sweep_dir)
    probe_before_sweep(config, args, sweep_dir, first_slot)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    manifest.record(config, sweep_dir, batch_size_of(config, args))
    if args.executor == "slurm":
        from .executors import slurm

        slurm.submit(config, sweep_dir, args.dry_run, args.gpus_per_run, args.out)
        return
    log.info("sweep of %s x %d epochs into %s/ (%s executor)", budget.runs_words(s),
             s["epochs"], sweep_dir, args.executor)
    if s["budget"] is not None:
        log.info("energy budget: %s", budget.line(s, sweep_dir))
    if args.executor == "ray":
        from .executors import ray

        results = ray.run_sweep(config, sweep_dir, s["ray_address"] or None, args.num_cpus,
                                args.gpus_per_run, args.cpus_per_run)
    else:
        from .executors import local

        results = local.run_sweep(config, sweep_dir, args.workers, slots.gpus(args), first_slot)
    from .executors.progress import none_finished, through

    nothing = none_finished(results)  # exit 1: `sweep && analyze` must not go on
    if nothing:
        raise RunsFailing(f"{nothing}; their folders are in {sweep_dir.resolve()}/")
    # With a budget `results` holds the runs that started only: the count is `runs`.
    failed = sum(r.get("status") == "failed" for r in results)
    retry = ("; `greenscreen sweep --retry-failed` trains the failed runs again once you "
             "have fixed what failed them" if failed and not s.get("retry_failed") else "")
    log.info("%s; results in %s/%s", through(results, None if budget.unbounded(s) else
                                             s["runs"]), sweep_dir.resolve(), retry)


def refuse_search(config: space.SweepConfig, executor: str) -> None:
    """Refuses what an executor cannot run: a pareto search under Slurm (or run-one), whose
    batches are proposed from the results of the batches before, which one job array
    cannot wait for; halving under Slurm without settings.slurm_parallel, the array tasks
    at once, which are its batch. Raises UsageError naming the settings and what to use."""
    s = config.settings
    if s["search"] == "pareto" and executor in ("slurm", "run-one"):
        raise UsageError(f"settings search: pareto runs under `greenscreen sweep local` "
                         f"(--workers N) or `greenscreen sweep ray`, not under {executor}: "
                         "each batch is proposed from the results of the batches before it, "
                         "which one Slurm job array cannot wait for. Under Slurm use search: "
                         "random, with early_stop: halving if you like.")
    if s["early_stop"] == "halving" and executor == "slurm" and not s["slurm_parallel"]:
        raise UsageError("settings early_stop: halving under Slurm needs "
                         "settings.slurm_parallel (or --parallel N): the array tasks that "
                         "run at once are the halving batch, and a run waits at its rung "
                         "for the runs of its batch, so N runs must fit on the partition at "
                         "once.")


def batch_size_of(config: space.SweepConfig, args: argparse.Namespace) -> int | None:
    """The runs that train at once, as far as the command line says: the local workers,
    Slurm's array tasks at once; None for Ray, which records its slots itself."""
    if args.executor == "slurm":
        return config.settings["slurm_parallel"] or None
    return getattr(args, "workers", None)


def folder_or_none(path: Path, flag: str) -> None:
    """Raises UsageError where `path`, or a folder it would be made in, is a file: `sweep`
    ended in FileExistsError's traceback after its probe, `final` in another, `check` said
    nothing and `status` "no sweep yet"."""
    for there in (path, *path.parents):
        if there.is_dir():
            return
        if there.exists():
            inside = "" if there == path else f" to make {path} in"
            raise UsageError(f"{flag}: {there} is a file, not a folder{inside}; name a folder")


def swept(sweep_dir: Path) -> Path:
    """`sweep_dir` where it is a folder; raises UsageError naming it and what to run."""
    if not sweep_dir.is_dir():
        what = " (a file, not a folder)" if sweep_dir.exists() else ""
        raise UsageError(f"no sweep in {sweep_dir}{what}: run greenscreen sweep first, or name "
                         "the sweep's folder with --sweep-dir (or settings.sweep_dir)")
    return sweep_dir


def analyze(args: argparse.Namespace) -> None:
    _analyze(load_config(args), getattr(args, "component", None), getattr(args, "out", None))


def _analyze(config: space.SweepConfig, component: str | None = None,
             out: str | None = None) -> None:
    import warnings

    from .analysis import analyze as analyze_sweep
    from .analysis import summary_text

    sweep_dir = swept(Path(config.settings["sweep_dir"]))
    out_dir = Path(out) if out else sweep_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: --out names the folder "
                         "analysis.json and the tables are written into")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-sample statistics warn loudly; we say it plainly
        result = analyze_sweep(sweep_dir, config.settings["accuracy_floor"],
                               config.settings["recommend"], component=component, out=out_dir)
    print(summary_text(result))
    log.info("analysis in %s/analysis.json and *.csv", out_dir.resolve())


def final(args: argparse.Namespace) -> None:
    from .executors.attempt import runs_left

    config = load_config(args)
    left, held = runs_left(config)
    if left and getattr(args, "if_complete", False):
        log.warning("final not run: %s; run the same sweep command again to train them, "
                    "then final", left)
        return
    if left or held:  # trained as asked, but the recommendation is of the runs finished so far
        what, advice = [], []
        if left:
            what.append(left)
            advice.append("run the same sweep command again to train the rest")
        if held:
            what.append(held)
            advice.append("a larger settings.budget trains what it holds back")
        log.warning("the sweep is not complete (%s): the recommendation is of the runs "
                    "finished so far; %s", "; ".join(what), "; ".join(advice))
    _final(config)


def _final(config: space.SweepConfig, slot: WorkerSlot | None = None) -> None:
    from .comparison import FILE
    from .comparison_words import outcome_words
    from .final import final_run
    from .objective import Objective

    sweep_dir = Path(config.settings["sweep_dir"])
    st = final_run(config, sweep_dir, slot)
    # "test accuracy 0.91", "validation loss 0.12": the value the sweep ranks runs by
    objective = st.get("objective") or {"name": "val_accuracy", "split": "test",
                                        "value": st.get("test_accuracy")}
    value = objective.get("value")
    log.info("final run %s: %s %s %s, folder %s/", st.get("status"), objective.get("split"),
             objective["name"].removeprefix("val_"),
             "n/a" if value is None else f"{value:.4f}", Path(st["folder"]).resolve())
    for passed in st["comparison"].get("passed_over", []):
        log.info("passed over: %s diverged in its first final run (%s), folder %s/",
                 passed["configuration"], passed["reason"], sweep_dir / passed["folder"])
    log.info("final comparison: %s (%s)",
             outcome_words(st["comparison"], Objective.of_sweep(sweep_dir)),
             (sweep_dir / "final" / FILE).resolve())


def report(args: argparse.Namespace) -> None:
    config = load_config(args)
    analysis = analysis_folder(getattr(args, "analysis", None))
    sweep_dir = analysed_sweep(Path(analysis), Path(config.settings["sweep_dir"]),
                               args.sweep_dir) if analysis else None
    _report(config, args.out, analysis, sweep_dir)


def analysis_folder(given: str | None) -> str | None:
    """`report --analysis`'s folder: the analysis.json file itself names its folder (what
    you meant); another file is an error saying what --analysis takes."""
    if given is None or not Path(given).is_file():
        return given
    if Path(given).name == "analysis.json":
        return str(Path(given).parent)
    raise UsageError(f"--analysis {given} is a file: --analysis names the folder `greenscreen "
                     "analyze --out DIR` wrote analysis.json into (or that analysis.json)")


def analysed_sweep(analysis_dir: Path, configured: Path, given: str | None) -> Path:
    """The sweep `report --analysis DIR` reports: the one DIR/analysis.json was made from
    (its `sweep_dir`), so that one sweep's analysis never goes with another's runs.
    settings.sweep_dir naming another folder gives way, and that is said; --sweep-dir
    naming another, or the analysed folder gone, is an error. `configured` (settings.sweep_dir
    or --sweep-dir) for an analysis.json written before it recorded its folder."""
    from . import analysis_file
    from .runfolder import Unreadable, read_json

    where = analysis_dir / "analysis.json"
    try:
        analysis = read_json(where)
    except Unreadable as exc:
        raise UsageError(str(exc)) from None
    if analysis is None:
        raise analysis_file.missing(analysis_dir, Path(given) if given else configured)
    recorded = analysis.get("sweep_dir")
    if not isinstance(recorded, str) or not recorded:
        return configured
    recorded = Path(recorded)
    if given is not None and Path(given).resolve() != recorded:
        raise UsageError(f"--sweep-dir {given} is not the sweep {where} was made from "
                         f"({recorded}); a report reads the runs of the sweep its analysis "
                         f"was made from: leave --sweep-dir out, or analyse {given} first "
                         "(greenscreen analyze --sweep-dir FOLDER --out DIR)")
    if not recorded.is_dir():
        raise UsageError(f"no sweep in {recorded}, the folder {where} was made from: if it "
                         "moved, analyse it where it is now (greenscreen analyze --sweep-dir "
                         f"FOLDER --out {analysis_dir})")
    if configured.resolve() != recorded:
        log.info("reporting %s, the sweep %s was made from (not settings.sweep_dir %s)",
                 recorded, where, configured)
    return recorded


def _report(config: space.SweepConfig, out: str | None, analysis: str | None = None,
            sweep_dir: Path | None = None) -> None:
    """The PDF of `sweep_dir` (default: settings.sweep_dir), analysed into `analysis` (default:
    the sweep folder)."""
    from .report import build

    sweep_dir = swept(sweep_dir or Path(config.settings["sweep_dir"]))
    pdf = Path(out or Path("report") / f"{sweep_dir.name}.pdf")
    folder_or_none(pdf.parent, "--out")
    if pdf.is_dir():  # said before the PDF is built, not after
        raise UsageError(f"--out {pdf} is a folder: --out names the PDF file, e.g. "
                         f"--out {pdf / sweep_dir.name}.pdf")
    log.info("report written to %s", build(sweep_dir, pdf, analysis).resolve())


def everything(args: argparse.Namespace) -> None:
    """sweep, analyze, final, report; under Slurm only the submission, whose dependent job
    does the rest."""
    config = load_config(args)
    slot = slots.first_worker(config, args)  # the sweep's first worker trains the final runs too
    try:
        if slot is not None:  # from this thread, so that it outlives the sweep's slot threads
            slot.start(config.settings["sweep_dir"])
        _sweep(config, Path(config.settings["sweep_dir"]), args, slot)
        if args.executor == "slurm":
            return
        _analyze(config)
        if slot is not None and slots.worker_count(args) > 1:
            # Pinned to a share of the CPUs: the final runs, alone now, get a worker on
            # every CPU (and the first of --gpus), once this one has let go of its GPU.
            slot.close()
            slot = slots.final_worker(config, args)
        _final(config, slot)
    finally:
        if slot is not None:
            slot.close()
    _report(config, args.out)


def run_one(args: argparse.Namespace) -> int | None:
    """One run (`--index`), or a share of the runs (`--share k/N`) in one warm worker, as a
    Slurm array task or by hand (`executors.share`)."""
    from .executors.share import train_share

    config = load_config(args)
    refuse_search(config, "run-one")
    train_share(config, args.index, args.share)
    return None


def status(args: argparse.Namespace) -> None:
    from . import status as sweep_status

    sweep_status.show(load_config(args).settings, as_json=args.json)


def meters(args: argparse.Namespace) -> None:
    from greenscreen.meters import available

    for row in available():
        state = "available" if row["available"] else "unavailable: " + row["reason"]
        print(f"{row['source']:<11} {row['provenance']:<22} {state}")


def gpu_check(args: argparse.Namespace) -> int:
    """benchmarks/gpu_check.py under the JAX backend, the path it checks on a real GPU."""
    if not GPU_CHECK.exists():
        raise MissingDependency(f"gpu-check runs from a greenscreen checkout; {GPU_CHECK} "
                                "is not here (an installed copy has no benchmarks/)")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    return subprocess.run([sys.executable, str(GPU_CHECK), *args.passed_on], env=env,
                          check=False).returncode


HANDLERS = {"all": everything, "sweep": sweep, "analyze": analyze, "final": final,
            "report": report, "check": check, "run-one": run_one, "status": status,
            "meters": meters, "gpu-check": gpu_check}
