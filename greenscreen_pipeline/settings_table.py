"""The settings config.yaml's `settings:` accepts: each one's type, default and what is
allowed (in the words every error about it uses), the ones that take a word, the least
values, and the patterns of the values that reach Slurm's #SBATCH lines. space.py checks
a config against them."""

from __future__ import annotations

from greenscreen import choices

from . import budget

# numpy's (and so keras.utils.set_random_seed's) highest seed; run i trains with seed + i.
SEED_TOP = 2 ** 32 - 1
SETTINGS = {  # key: (type, default, description of what is allowed)
    "runs": (int, 8, f"a positive integer, at most {SEED_TOP + 1} (10000 when budget is set "
                     "and runs is not: the budget stops first)"),
    "epochs": (int, 3, "a positive integer"),
    # The energy budget (README "Energy budget", budget.py): no new run once it is spent.
    "budget": (float, None, budget.ALLOWED),
    "final_epochs": (int, 50, "a positive integer (50, as in the original study)"),
    "final_seeds": (int, 3, "a positive integer: seeds of the recommendation and baseline"),
    "repeats": (int, 1, "a positive integer: trainings of each configuration (repeats.py)"),
    "seed": (int, 22, f"an integer in [0, {SEED_TOP}] (2**32 - 1, numpy's seeds): run i "
                      "trains with seed + i"),
    "sweep_dir": (str, "sweeps/default", "a folder path (not empty)"),
    "accuracy_floor": (float, 0.02, "a number in [0, 1]: how far below the best accuracy (above "
                                    "the best value of a minimised objective) a recommended "
                                    "run may be"),
    "data_path": (str, "", "a folder for dataset cifar10_dir or image_folder ('' otherwise)"),
    "image_size": (int, 32, "a positive integer (image_folder is resized to it)"),
    "energy_source": (str, "auto", "one of " + ", ".join(choices.SOURCE_NAMES)),
    # Your task (objective.py): the loss compiled with, and the validation metric ranked by.
    "loss": (str, "categorical_crossentropy", "a Keras loss name"),
    "objective": (str, "", "'' (val_accuracy for a classification loss, else val_loss) or a "
                           "validation metric's name, e.g. val_mae"),
    "objective_mode": (str, "auto", "auto, min or max"),
    # Your own training loop instead of compile + fit: function(params, callbacks) -> metrics.
    "train": (str, "", "'' (the pipeline compiles and fits) or 'module:function'"),
    # run: the lowest-energy run within the floor; values: each parameter's best value alone
    # (the original pipeline's rule). README "Analysis, final run, report" compares them.
    "recommend": (str, "run", "run or values"),
    "keep_checkpoints": (bool, False, "true or false: keep each run's checkpoint/ once it is "
                                      "done (it is removed by default)"),
    "save_models": (bool, False, "true or false: keep each run's trained model as model.keras "
                                 "in its folder (off by default: disk space)"),
    # How runs are trained (README "How runs are trained"): warm workers, one long-lived
    # process per executor slot, unless isolate_runs gives every run a fresh process.
    "isolate_runs": (bool, False, "true or false: train every run in a fresh process of its "
                                  "own (off by default: warm workers)"),
    "worker_memory_growth_mb": (float, 4096.0, "a number > 0: a warm worker whose memory (RSS, "
                                               "or GPU memory) grew by more MiB since its "
                                               "first run is replaced"),
    # Failing runs (README "When runs fail"): stop after this many in a row fail with the
    # same error (0: never); retry_failed (or --retry-failed) trains failed runs again.
    "stop_after_failures": (int, 3, "an integer >= 0 (0: never stop)"),
    "retry_failed": (bool, False, "true or false (usually given as --retry-failed)"),
    # The report's CO2: carbon_intensity (g CO2/kWh) wins over country; neither: world average.
    "country": (str, "", "an ISO 3166 alpha-2 or alpha-3 code in greenscreen.carbon.INTENSITY "
                         "(e.g. DE, FRA), or '' for the world average"),
    "carbon_intensity": (float, None, "a number >= 0 (g CO2 per kWh), or null to use country"),
    # Executors (README "Scaling out"); command-line flags override these.
    "slurm_partition": (str, "", "a Slurm partition name (letters, digits, _ . - ,) or ''"),
    "slurm_time": (str, "", "a Slurm time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or "
                            "D-HH:MM:SS, or ''"),
    "slurm_account": (str, "", "a Slurm account name (letters, digits, _ . -) or ''"),
    "slurm_parallel": (int, 0, "an integer >= 0: most array tasks at once (0: no limit)"),
    "ray_address": (str, "", "a Ray cluster address (e.g. ray://head:10001 or auto), or '' "
                             "for a local Ray instance"),
    # The search (issue 25, greenscreen_pipeline/search/): what to train next, when to stop.
    "search": (str, "random", "random or pareto"),
    "early_stop": (str, "off", "off or halving"),
    "halving_eta": (int, 3, "an integer >= 2"),
    # A run at a halving rung its peers have not decided gives its worker to the next run
    # and resumes from its checkpoint once the rung is decided (executors/parked.py).
    "release_at_rungs": (bool, True, "true or false: with early_stop halving, a run waiting "
                                     "at a rung gives its worker to the next run (a local "
                                     "random search); false: it waits holding its worker"),
    "search_sampler": (str, "tpe", "tpe, nsga2 or gp"),
}
# Settings that take one of a few words (the description above says which).
SETTING_WORDS = {"recommend": ("run", "values"), "search": ("random", "pareto"),
                 "early_stop": ("off", "halving"), "search_sampler": ("tpe", "nsga2", "gp"),
                 "energy_source": choices.SOURCE_NAMES}
MINIMUM = {"runs": 1, "epochs": 1, "final_epochs": 1, "final_seeds": 1, "repeats": 1,
           "image_size": 1, "slurm_parallel": 0, "stop_after_failures": 0, "halving_eta": 2,
           "seed": 0}
# The highest values: seeds numpy takes (space._check_seeds checks seed + runs - 1 too).
MAXIMUM = {"runs": SEED_TOP + 1, "seed": SEED_TOP}
# Slurm values are written into #SBATCH lines, so nothing but these characters may reach them.
_SLURM_TIME = r"\d+(:\d{2}){0,2}|\d+-\d+(:\d{2}){0,2}"
EXECUTOR_PATTERNS = {
    "slurm_partition": r"[A-Za-z0-9_.,-]*",
    "slurm_account": r"[A-Za-z0-9_.-]*",
    "slurm_time": f"({_SLURM_TIME})?",
    "ray_address": r"[^\s]*",
}


# The command-line options that override a setting: an error in a value one of them gave
# names the option, not a key config.yaml may not even hold (`--time 4h` was "settings.
# slurm_time: got '4h'").
OPTION_OF = {"runs": "--runs", "epochs": "--epochs", "sweep_dir": "--sweep-dir",
             "slurm_partition": "--partition", "slurm_time": "--time",
             "slurm_account": "--account", "slurm_parallel": "--parallel",
             "ray_address": "--address", "retry_failed": "--retry-failed"}
