"""sweep.json: which sweep a folder holds, so that two different sweeps never mix in one.

Checked once, by `record`, before any executor starts: the local pool, a Slurm
submission and a Ray sweep all pass through `commands.sweep`. A sweep is its seed, its
space, its search, and the settings that decide how every run trains and is judged
(`TRAINING`: the epochs, your own loop, the loss and the objective; image_size where a
run reads image_folder): a folder is not resumed with other ones. Your own code is
compared by the file and function it resolves to (`code_of`), not by its spelling.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from greenscreen.fileio import atomic_write_json

from .errors import UsageError
from .log import logger
from .objective import Objective, ObjectiveError
from .runfolder import RunFolder, Unreadable, read_json
from .search import halving
from .settings_table import SETTINGS
from .space import BASELINE, ENTRY_DIMENSIONS, SweepConfig
from .user_code import is_entry, resolved
from .yamlload import shown

FILE = "sweep.json"
# Recorded when a sweep starts and kept for its life, not compared on resume: the batch
# size (Ray records its slots later) and the halving rule (a later default does not
# change a started sweep's rungs; `halving_rule`).
KEPT = ("batch_size", "halving_rule")
# Settings every run of a sweep trains or is judged by, besides its seed, space and search
# (`training_of`): a change would mix runs of other lengths, losses or objectives in one
# ranking, and halving's rungs (at shares of `epochs`, by the objective) would differ
# from those its runs were decided at. The rest (runs, budget, the final stage's, the
# executors', energy_source, the analysis's accuracy_floor and recommend, data_path) may
# change between invocations.
TRAINING = ("epochs", "train", "loss", "objective", "objective_mode")
# Your own code the sweep names ("module:function": settings.train, the space's models and
# datasets), recorded as what it resolves to (`user_code.resolved`: the file and the
# function), so that a resume compares that, not the spelling.
CODE = "code"
# The SHA-256 of each of those files when the sweep's first run finished with it, kept for
# its life (taken again until a run has finished; for a sweep.json from before it existed,
# at the first resume since): code edited in place resolves as before and is resumed, with
# a warning on every resume, since the finished runs keep what the earlier version trained
# (`_warn_edited`).
CODE_DIGEST = "code_sha256"

log = logger(__name__)
_WARNED: set[tuple[str, str]] = set()  # (sweep folder, key) said in this process


class OtherSweep(UsageError):
    """The folder holds a sweep with another seed or search space, search, or settings its
    runs train by."""


def record(config: SweepConfig, sweep_dir: Path, batch_size: int | None = None) -> None:
    """Refuses to mix two different sweeps in one folder; records this sweep otherwise.

    A sweep's search (`search_of`) is part of what it is: a folder started as a random
    search is not resumed as a pareto one, nor with another batch size.

    Args:
        config: The sweep's config.
        sweep_dir: Its folder.
        batch_size: Runs per batch of a pareto search or halving: the local workers,
            Ray's slots or Slurm's array tasks at once. None keeps the recorded one (the
            Ray executor records its slots once it has seen the cluster).
    """
    manifest = Path(sweep_dir) / FILE
    mine = _jsonable({"seed": config.settings["seed"], "space": config.space})
    old = read_json(manifest)
    if old is not None and not same_sweep(old, mine):
        raise OtherSweep(f"{sweep_dir} holds a sweep with another seed or search space "
                         f"({first_difference(old, mine)}); pass another --sweep-dir (or "
                         "delete that folder).")
    code = code_of(config)
    if old is not None and old.get("settings") is not None:  # older ones: no settings
        _same_training(sweep_dir, old, config.settings, config.path, code)
    search = search_of(config.settings, batch_size)
    if old is not None:
        search = _same_search(sweep_dir, old.get("search") or search_of({}), search)
    digests = _digests(code)
    if old is not None and _finished_any(sweep_dir):  # else no run keeps an older version
        first = old.get(CODE_DIGEST) if isinstance(old.get(CODE_DIGEST), dict) else {}
        _warn_edited(sweep_dir, code, first, digests)
        digests.update(first)  # kept, even where a file does not resolve this time
    atomic_write_json(manifest, {**mine, "config": config.path, "settings": config.settings,
                                 "search": search, CODE: code, CODE_DIGEST: digests})


def _finished_any(sweep_dir: Path) -> bool:
    """Whether a run of the sweep has finished (stops at the first): until one has, code
    edited in place leaves no result of the earlier version, and its digest is taken
    again. An unreadable folder counts as finished: the warning is the safe side."""
    try:
        return any(RunFolder(p).status_record().get("status") == "done"
                   for p in Path(sweep_dir).iterdir() if p.name.isdigit())
    except (OSError, Unreadable):
        return True


def _digests(code: dict) -> dict:
    """Key path -> the SHA-256 of the file each entry of `code` ('file:function') names."""
    out = {}
    for key, where in code.items():
        try:
            out[key] = hashlib.sha256(Path(where.rpartition(":")[0]).read_bytes()).hexdigest()
        except OSError:  # gone since it resolved: nothing to compare
            pass
    return out


def _warn_edited(sweep_dir: Path, code: dict, first: dict, now: dict) -> None:
    """A warning per entry of your own code whose file is no longer what the sweep first
    trained with (the same path, other bytes: another file would have been refused)."""
    for key in sorted(k for k in now if k in first and first[k] != now[k]):
        if (str(sweep_dir), key) in _WARNED:  # Ray records again once it sees the cluster
            continue
        _WARNED.add((str(sweep_dir), key))
        log.warning("%s (%s) has changed since the sweep in %s first trained with it: its "
                    "finished runs keep what the earlier version trained and are not trained "
                    "again, so the sweep now compares runs of two versions of your code; to "
                    "compare like with like, pass another --sweep-dir", key,
                    code[key].rpartition(":")[0], sweep_dir)


def code_of(config: SweepConfig) -> dict:
    """Key path -> 'file:function' of each entry of your own code the config names
    (`CODE`): settings.train, and each model or dataset value of the space as
    "configuration.<dim> <value>"; an entry that does not resolve plainly is left out."""
    named = {"settings.train": config.settings.get("train")}
    for dim in ENTRY_DIMENSIONS:
        values = config.space.get(dim)
        named.update({f"configuration.{dim} {v}": v for v in
                      (values if isinstance(values, list) else []) if is_entry(v)})
    found = {key: resolved(v, config.folder) for key, v in named.items() if is_entry(v)}
    return {key: where for key, where in found.items() if where}


def _compared(old: dict, code: dict) -> dict:
    """(recorded, now) per entry of `code` both name: what is compared on resume; (now,
    now) where both name the same code (`_same_code`). An entry recorded as a file that is
    gone (the project moved) is left out: its spelling is compared, as an entry that does
    not resolve."""
    recorded = old.get(CODE) if isinstance(old.get(CODE), dict) else {}
    return {key: (now, now) if _same_code(recorded[key], now) else (recorded[key], now)
            for key, now in code.items() if isinstance(recorded.get(key), str)
            and Path(recorded[key].rpartition(":")[0]).is_file()}


def training_of(settings: dict, space: dict) -> dict:
    """The settings that decide how every run trains and is judged (`TRAINING`), as key
    path -> value, a setting absent (a sweep.json from before it existed) at its default;
    the objective and its mode as the runs resolve them ('' and auto: the loss's), so that
    naming the default is no change; settings.image_size where the space has image_folder
    (the only dataset resized to it)."""
    out = {f"settings.{key}": settings.get(key, SETTINGS[key][1]) for key in TRAINING}
    try:
        objective = Objective.from_settings(settings)
    except ObjectiveError:  # compared as written (config.yaml's check names the mistake)
        pass
    else:
        out.update({"settings.loss": objective.loss, "settings.objective": objective.name,
                    "settings.objective_mode": "max" if objective.maximise else "min"})
    datasets = space.get("dataset")
    if isinstance(datasets, list) and "image_folder" in datasets:
        out["settings.image_size"] = settings.get("image_size", SETTINGS["image_size"][1])
    return out


def _training_pair(old: dict, settings: dict) -> tuple[dict, dict]:
    """(`training_of` the settings sweep.json `old` recorded, of `settings`), both over
    the space it recorded: what a resume compares and `status` reports."""
    space = old.get("space") if isinstance(old.get("space"), dict) else {}
    return training_of(old.get("settings") or {}, space), training_of(settings, space)


def recorded_training(sweep_dir: Path, settings: dict) -> tuple[dict, list[str]]:
    """What the folder's sweep.json records of the settings its runs train by
    (`training_of`; {} for none or an unreadable one), and each that `settings` gives
    otherwise, as "key: recorded (this config: given)": what `status` reports, which
    reads and refuses nothing."""
    try:
        old = read_json(Path(sweep_dir) / FILE) or {}
    except Unreadable:
        return {}, []
    if not isinstance(old.get("settings"), dict):
        return {}, []
    was, now = _training_pair(old, settings)
    return was, [f"{key}: {was[key]!r} (this config: {now[key]!r})" for key in now
                 if key in was and was[key] != now[key]]


def _same_training(sweep_dir: Path, old: dict, settings: dict, config: object,
                   code: dict) -> None:
    """Raises OtherSweep naming each setting of `TRAINING` that differs from the one the
    folder's sweep recorded, what the folder holds, what was given and what to do. Your
    own code (`code`, `code_of`) is compared by what it resolves to where both sweeps
    name a file: settings.train spelled otherwise is the same loop; a model or dataset
    of the space (spelled alike, `same_sweep`) naming another file is another one."""
    was, now = _training_pair(old, settings)
    written = {key for key in now if key in was and was[key] != now[key]}  # as spelled
    for key, (recorded, current) in _compared(old, code).items():
        was[key], now[key] = recorded, current
    changed = [key for key in now if key in was and was[key] != now[key]]
    if not changed:
        return
    held = "; ".join(f"{key}: {was[key]!r} (this config: {now[key]!r})" for key in changed)
    settings_changed = [key for key in changed if key in written]
    what_to_do = [f"set {', '.join(settings_changed)} back in {config or 'config.yaml'} (or "
                  "the flag that overrides it, e.g. --epochs)"] if settings_changed else []
    if len(settings_changed) < len(changed):  # spelled alike, naming another file
        what_to_do.append("name the code the sweep trained with (that file, or a copy of it)")
    raise OtherSweep(
        f"{sweep_dir} holds a sweep whose runs trained with {held}. Every run of a sweep "
        "trains and is ranked alike (halving's rungs too), so it is not resumed with "
        f"other values: {' and '.join(what_to_do)}, or pass another --sweep-dir for the "
        "new values.")


def _same_code(recorded: str, now: str) -> bool:
    """Whether two resolutions ('file:function') name one function of one file or of a copy
    of it (the same bytes: a second clone, a copy of the project, a scratch copy on a
    cluster)."""
    if recorded == now:
        return True
    (old_file, _, old_function), (new_file, _, new_function) = (
        recorded.rpartition(":"), now.rpartition(":"))
    try:
        return old_function == new_function and \
            Path(old_file).read_bytes() == Path(new_file).read_bytes()
    except OSError:
        return False


def search_of(settings: dict, batch_size: int | None = None) -> dict:
    """What decides which runs train and how long: the search, its sampler, halving and its
    rate, the repeats (run i trains configuration i // repeats), and the batch size (only
    the settings in use; a sweep.json without it: random, one repeat)."""
    out = {"search": settings.get("search", "random"),
           "early_stop": settings.get("early_stop", "off")}
    if settings.get("repeats", 1) != 1:  # left out at 1: older sweep.json files match
        out["repeats"] = settings["repeats"]
    if out["search"] == "pareto":
        out["search_sampler"] = settings.get("search_sampler", "tpe")
    if out["early_stop"] == "halving":
        out["halving_eta"] = settings.get("halving_eta", 3)
        out["halving_rule"] = rule_json(halving.default_rule(out["halving_eta"]))
    if (out["search"] == "pareto" or out["early_stop"] == "halving") and batch_size:
        out["batch_size"] = batch_size
    return out


def batch_size(sweep_dir: Path) -> int | None:
    """The batch size sweep.json records for its pareto search or halving; None if none."""
    data = read_json(Path(sweep_dir) / FILE) or {}
    return (data.get("search") or {}).get("batch_size")


def rule_json(rule: halving.Rule) -> dict:
    """A halving rule's parts beyond eta, as sweep.json records them."""
    return {"grace": rule.grace, "brackets": rule.brackets, "ranking": rule.ranking}


def halving_rule(sweep_dir: "str | Path", eta: int) -> halving.Rule:
    """The halving rule the sweep in `sweep_dir` applies: the one sweep.json recorded when
    it started; issue 25's (`Rule(eta)`) for a sweep.json from before rules were recorded
    (every sweep then applied it); `halving.default_rule` where there is no sweep.json."""
    data = read_json(Path(sweep_dir) / FILE)
    if data is None:
        return halving.default_rule(eta)
    return halving.Rule(eta, **(data.get("search") or {}).get("halving_rule", {}))


def _same_search(sweep_dir: Path, old: dict, mine: dict) -> dict:
    """The search to record: `mine`, with the recorded batch size where it gives none and
    the recorded halving rule. Raises OtherSweep where the search or the batch size
    differ from the recorded ones."""
    if mine.get("early_stop") == "halving":  # absent: started before rules were recorded
        mine = {**mine, "halving_rule": old.get("halving_rule", rule_json(halving.Rule()))}
    if {k: v for k, v in old.items() if k not in KEPT} != {
            k: v for k, v in mine.items() if k not in KEPT}:
        raise OtherSweep(f"{sweep_dir} was started with {_words(old)}; this config says "
                         f"{_words(mine)}. Set those settings back, or pass another "
                         "--sweep-dir.")
    if "batch_size" not in mine or "batch_size" not in old:
        return {**old, **mine}
    if old["batch_size"] != mine["batch_size"]:
        size = old["batch_size"]
        raise OtherSweep(f"{sweep_dir} was started in batches of {size} runs and got "
                         f"{mine['batch_size']} now; its search and halving depend on that: "
                         f"pass --workers {size} (local), --parallel {size} (Slurm) or give "
                         f"Ray at least {size} slots, or pass another --sweep-dir.")
    return mine


def _words(search: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in search.items() if k not in KEPT)


def same_sweep(old: dict, mine: dict) -> bool:
    """Same seed and space. A dimension added since the old sweep was recorded matches
    when it holds only its baseline value, which is what those runs trained with."""
    added = set(mine["space"]) - set(old.get("space", {}))
    baseline = _jsonable({dim: [BASELINE[dim]] for dim in added if dim in BASELINE})
    return old.get("seed") == mine["seed"] and (
        {**old.get("space", {}), **baseline} == mine["space"])


def first_difference(old: dict, mine: dict) -> str:
    """The first key path where this config's seed or space differs from the recorded
    sweep's, with both values: "configuration.units: this sweep [64, 8], this config
    [64, 16]" (`same_sweep`'s question, answered in words)."""
    if old.get("seed") != mine["seed"]:
        return f"settings.seed: this sweep {old.get('seed')!r}, this config {mine['seed']!r}"
    theirs, ours = old.get("space", {}), mine["space"]
    for dim in sorted(set(theirs) | set(ours)):
        if dim not in theirs and ours[dim] == _jsonable([BASELINE.get(dim)]):
            continue  # a dimension added since, at the value those runs trained with
        if theirs.get(dim) != ours.get(dim):
            said = lambda v: "not in it" if v is None else shown(v)  # noqa: E731
            return (f"configuration.{dim}: this sweep {said(theirs.get(dim))}, this config "
                    f"{said(ours.get(dim))}")
    return "the seed and space as recorded differ"


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d))
