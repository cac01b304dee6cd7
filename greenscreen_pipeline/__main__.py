"""Command line of the sweep application: python -m pipeline {sweep,...} [options]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import space


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="greenscreen.sh", description="greenscreen pipeline")
    parser.add_argument("stage", choices=["sweep", "analyze", "final", "report", "all", "check",
                                          "run-one"])
    parser.add_argument("--index", type=int, default=None, help="run-one: the run to train")
    parser.add_argument("--executor", choices=["local", "slurm", "ray"], default="local")
    parser.add_argument("--dry-run", action="store_true", help="slurm: print, do not submit")
    parser.add_argument("--partition", default=None, help="slurm (default: settings)")
    parser.add_argument("--time", default=None, help="slurm: per-run time limit, e.g. 04:00:00")
    parser.add_argument("--account", default=None, help="slurm (default: settings)")
    parser.add_argument("--parallel", type=int, default=None, help="slurm: max runs at once")
    parser.add_argument("--gpus-per-run", type=int, default=None,
                        help="slurm, ray: GPUs per run (slurm default 1; ray: 1 if the "
                             "cluster has GPUs, else 0)")
    parser.add_argument("--address", default=None, help="ray: cluster address (default: "
                        "settings.ray_address; none: a local Ray instance)")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="ray: CPUs of the local Ray instance (default: all)")
    parser.add_argument("--cpus-per-run", type=int, default=None,
                        help="ray: CPUs per run (default 1)")
    parser.add_argument("--out", default=None, help="report: the PDF to write")
    parser.add_argument("--workers", type=int, default=None,
                        help="sweep, local: runs trained at once (default 1)")
    parser.add_argument("--gpus", default=None,
                        help="sweep, local: comma-separated GPU ids; worker k sees only GPU k")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--sweep-dir", default=None)
    args = parser.parse_args(argv)
    try:
        config = space.load(args.config, {
            "runs": args.runs, "epochs": args.epochs, "sweep_dir": args.sweep_dir,
            "slurm_partition": args.partition, "slurm_time": args.time,
            "slurm_account": args.account, "slurm_parallel": args.parallel,
            "ray_address": args.address})
    except space.ConfigError as exc:
        print(f"greenscreen: bad config: {exc}", file=sys.stderr)
        return 2
    settings = config.settings
    if args.stage == "check":
        print(f"greenscreen: {args.config} is valid: {len(config.space)} dimensions, "
              f"{settings['runs']} runs x {settings['epochs']} epochs")
        return 0
    sweep_dir = Path(settings["sweep_dir"])
    stages = ["sweep", "analyze", "final", "report"] if args.stage == "all" else [args.stage]
    if args.stage == "all" and args.executor == "slurm":
        stages = ["sweep"]  # submission returns at once; the dependent report job does the rest
    for stage in stages:
        STAGES[stage](config, sweep_dir, args)
    return 0


def run_sweep(config, sweep_dir: Path, args) -> None:
    from .sweep import Interrupted, check_manifest, sweep

    s = config.settings
    check_executor_flags(args)
    for flag in ("workers", "num_cpus", "cpus_per_run"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SystemExit(f"greenscreen: --{flag.replace('_', '-')}={value} is not valid; "
                             "allowed: an integer >= 1")
    if args.gpus_per_run is not None and args.gpus_per_run < 0:
        raise SystemExit(f"greenscreen: --gpus-per-run={args.gpus_per_run} is not valid; "
                         "allowed: an integer >= 0")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    check_manifest(config, sweep_dir)
    if args.executor == "slurm":
        from .slurm import submit

        gpus = 1 if args.gpus_per_run is None else args.gpus_per_run
        submit(config, sweep_dir, args.dry_run, gpus, args.out)
        return
    print(f"greenscreen: sweep of {s['runs']} runs x {s['epochs']} epochs into {sweep_dir}/ "
          f"({args.executor} executor)", flush=True)
    if args.executor == "ray":
        from .ray_executor import run_sweep as ray_sweep

        try:
            results = ray_sweep(config, sweep_dir, s["ray_address"] or None, args.num_cpus,
                                args.gpus_per_run, args.cpus_per_run or 1)
        except KeyboardInterrupt:
            print("greenscreen: stopped; run the same command again to finish (interrupted "
                  "runs resume)", flush=True)
            raise SystemExit(130) from None
    else:
        gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else None
        try:
            results = sweep(config, s["runs"], s["epochs"], sweep_dir, args.workers or 1, gpus)
        except Interrupted as stopped:
            done = sum(r["status"] == "done" for r in stopped.statuses)
            print(f"greenscreen: stopped with {done}/{len(stopped.statuses)} runs done; run the "
                  "same command again to finish (interrupted runs resume)", flush=True)
            raise SystemExit(130) from None
    done = sum(r["status"] == "done" for r in results)
    print(f"greenscreen: {done}/{len(results)} runs done; results in {sweep_dir.resolve()}/")


# Which executors each sweep flag means something to; any other use is refused, not ignored.
EXECUTOR_FLAGS = {"workers": ("local",), "gpus": ("local",), "dry_run": ("slurm",),
                  "partition": ("slurm",), "time": ("slurm",), "account": ("slurm",),
                  "parallel": ("slurm",), "gpus_per_run": ("slurm", "ray"),
                  "address": ("ray",), "num_cpus": ("ray",), "cpus_per_run": ("ray",)}


def check_executor_flags(args) -> None:
    for flag, executors in EXECUTOR_FLAGS.items():
        if getattr(args, flag) not in (None, False) and args.executor not in executors:
            allowed = " or ".join(f"--executor {e}" for e in executors)
            raise SystemExit(f"greenscreen: --{flag.replace('_', '-')} applies to {allowed}, "
                             f"not to --executor {args.executor}; drop it or change executor.")


def run_analyze(config, sweep_dir: Path, args) -> None:
    import warnings

    from .analysis import analyze, summary_text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-sample statistics warn loudly; we say it plainly
        result = analyze(sweep_dir, config.settings["accuracy_floor"],
                         config.settings["recommend"])
    print(summary_text(result))
    print(f"greenscreen: analysis in {sweep_dir.resolve()}/analysis.json and *.csv")


def run_final(config, sweep_dir: Path, args) -> None:
    from .final import final_run

    st = final_run(config, sweep_dir)
    print(f"greenscreen: final run {st.get('status')}: test accuracy "
          f"{st.get('test_accuracy')}, folder {(sweep_dir / 'final').resolve()}/")


def run_report(config, sweep_dir: Path, args) -> None:
    from .report import build

    out = Path(args.out or Path("report") / f"{sweep_dir.name}.pdf")
    print(f"greenscreen: report written to {build(sweep_dir, out).resolve()}")


def run_single(config, sweep_dir: Path, args) -> None:
    """One run, as a Slurm array task (or by hand): claimed like every other run. SIGTERM
    (Slurm's time limit) or SIGINT leave it interrupted, its claim released, to resume."""
    from .sweep import Stop, _do

    if args.index is None:
        raise SystemExit("greenscreen: run-one needs --index N")
    stop = Stop()
    stop.install()
    st, note, _ = _do(config, sweep_dir, args.index, config.settings["epochs"], None, stop)
    print(f"greenscreen: run {args.index:03d} {note}")
    if stop.requested:
        raise SystemExit(130)


STAGES = {"run-one": run_single, "sweep": run_sweep, "analyze": run_analyze,
          "final": run_final, "report": run_report}


if __name__ == "__main__":
    sys.exit(main())
