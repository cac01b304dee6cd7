"""Command line of the sweep application: python -m pipeline {sweep,...} [options]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import space


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="greenscreen.sh", description="greenscreen pipeline")
    parser.add_argument("stage", choices=["sweep", "check"])
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--sweep-dir", default=None)
    args = parser.parse_args(argv)
    try:
        config = space.load(args.config, {"runs": args.runs, "epochs": args.epochs,
                                          "sweep_dir": args.sweep_dir})
    except space.ConfigError as exc:
        print(f"greenscreen: bad config: {exc}", file=sys.stderr)
        return 2
    settings = config.settings
    if args.stage == "check":
        print(f"greenscreen: {args.config} is valid: {len(config.space)} dimensions, "
              f"{settings['runs']} runs x {settings['epochs']} epochs")
        return 0
    from .sweep import sweep

    sweep_dir = Path(settings["sweep_dir"])
    print(f"greenscreen: sweep of {settings['runs']} runs x {settings['epochs']} epochs "
          f"into {sweep_dir}/", flush=True)
    results = sweep(config, settings["runs"], settings["epochs"], sweep_dir)
    done = sum(r["status"] == "done" for r in results)
    print(f"greenscreen: {done}/{len(results)} runs done; results in {sweep_dir.resolve()}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
