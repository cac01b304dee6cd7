"""GPU power from one long-lived `nvidia-smi --loop-ms` subprocess.

One process is read line by line on a background thread, instead of one
process per sample: spawning nvidia-smi costs tens of milliseconds of CPU and
would itself show up in the measurement. The process is restarted with
backoff when it dies, killed and restarted when it stalls, and always reaped.

Which power field: on Ampere (except GA100) and newer GPUs `power.draw` is the
driver's 1-second average (Yang et al. 2023, "Part-time Power Measurements:
nvidia-smi's Lack of Attention"), so every window edge is smeared by up to
~1 s. Drivers from R535 on also offer `power.draw.instant`. By default
(`power_field="auto"`) the source reads `power.draw.instant` where the driver
lists it and it has a value for every selected GPU, and `power.draw` otherwise;
it decides once per source. The provenance says which field was read:
"measured:nvidia-smi" is `power.draw` (what it has always meant), any other
field is named after it, "measured:nvidia-smi(power.draw.instant)", so checks
of the form `provenance.startswith("measured:nvidia-smi")` hold for both.
"""

from __future__ import annotations

import atexit
import math
import os
import select
import shutil
import subprocess
import threading
import time
import weakref

from ..validation import check_choice, check_number, invalid
from ._probe import PROBE_TIMEOUT_S, ask
from ._util import check_gpus
from .base import PowerSource, Sample, Sink, check_positive, proc_cpu_seconds
from .smi_lines import FIELDS, parse_line, parse_value

ENV_EXECUTABLE = "GREENSCREEN_NVIDIA_SMI"
POWER_FIELDS = ("auto", "power.draw", "power.draw.average", "power.draw.instant")
PROVENANCE = "measured:nvidia-smi"
INSTANT = "power.draw.instant"
_LIVE: "weakref.WeakSet[NvidiaSmiSource]" = weakref.WeakSet()


def resolve_executable() -> str | None:
    """Returns the nvidia-smi to run: `$GREENSCREEN_NVIDIA_SMI`, else PATH.

    Raises:
        ValueError: `$GREENSCREEN_NVIDIA_SMI` names no executable file.
    """
    override = os.environ.get(ENV_EXECUTABLE)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise invalid(ENV_EXECUTABLE, override, "the path of an executable nvidia-smi "
                          "file (or unset it to search PATH)")
        return override
    return shutil.which("nvidia-smi")


def executable_or_none() -> str | None:
    """`resolve_executable`, None where `$GREENSCREEN_NVIDIA_SMI` is not valid: the
    source is then unavailable, and `unavailable_reason` says why (the environment is
    no argument: a fit goes on with another source, as without nvidia-smi)."""
    try:
        return resolve_executable()
    except ValueError:
        return None


def visible_gpus(gpus: "list[int | str] | None" = None) -> "list[str] | None":
    """GPU ids to query: `gpus` if given, else `CUDA_VISIBLE_DEVICES`.

    Returns None for "all GPUs" and [] when every GPU is hidden. Ids may be
    indices or UUIDs; nvidia-smi's `-i` takes both. CUDA numbers devices
    fastest-first unless `CUDA_DEVICE_ORDER=PCI_BUS_ID`, while nvidia-smi uses
    PCI order: set that variable when your GPUs differ, so the ids agree.
    """
    if gpus is not None:
        return [str(g) for g in gpus]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return None
    ids = [tok.strip() for tok in env.split(",") if tok.strip()]
    # CUDA stops at the first invalid entry, and "-1" is the idiom for "no GPU".
    valid = []
    for tok in ids:
        if tok.startswith("-") or tok.lower() == "nodevfiles":
            break
        valid.append(tok)
    return valid


def provenance_of(field: str) -> str:
    """The provenance of figures read from `field`: bare for `power.draw`, else named."""
    return PROVENANCE if field == "power.draw" else f"{PROVENANCE}({field})"


def _hung(exe: str) -> str:
    return f"{exe} did not answer within {PROBE_TIMEOUT_S:g} s (hung?)"  # the field's note


def detect_power_field(exe: str, ids: "list[str] | None") -> tuple[str, str | None, bool]:
    """Which power field to read on this driver: (field, why not instant, definitive).

    `power.draw.instant` if `--help-query-gpu` lists it and every selected GPU gives a
    number for it, else `power.draw` with the reason. `definitive` is False when
    nvidia-smi could not answer at all (then nothing should be cached). A hung nvidia-smi
    is asked once, for PROBE_TIMEOUT_S (`_probe.ask`).
    """
    fallback = "read power.draw, on Ampere and newer GPUs the driver's 1-second average"
    try:
        listing = ask([exe, "--help-query-gpu"])
    except subprocess.TimeoutExpired:
        return "power.draw", _hung(exe), False
    except OSError as exc:
        return "power.draw", f"{exe} --help-query-gpu could not be run: {exc}", False
    if listing.returncode != 0:
        return "power.draw", f"{exe} --help-query-gpu exited with code {listing.returncode}", False
    if f'"{INSTANT}"' not in listing.stdout:
        return "power.draw", f"this driver has no {INSTANT} (drivers before R535); {fallback}", True
    probe = [exe, f"--query-gpu=index,{INSTANT}", "--format=csv,noheader,nounits"]
    probe += ["-i", ",".join(ids)] if ids else []
    try:
        out = ask(probe)
    except subprocess.TimeoutExpired:
        return "power.draw", _hung(exe), False
    except OSError as exc:
        return "power.draw", f"{exe} could not be queried for {INSTANT}: {exc}", False
    rows = [line.split(",") for line in out.stdout.strip().splitlines()]
    if out.returncode != 0 or not rows:
        why = f"{exe} could not be queried for {INSTANT} (exit code {out.returncode})"
        return "power.draw", why, False
    blind = [row[0].strip() for row in rows if len(row) != 2 or math.isnan(parse_value(row[1]))]
    if blind:
        return "power.draw", (f"{INSTANT} has no value on GPU {', '.join(blind)}; "
                              f"{fallback}"), True
    return INSTANT, None, True


class NvidiaSmiSource(PowerSource):
    """Streams samples from `nvidia-smi --query-gpu ... --loop-ms=N`.

    Args:
        interval: Seconds between samples (nvidia-smi's loop period).
        gpus: GPU indices or UUIDs; default: `CUDA_VISIBLE_DEVICES`, else all.
        stall_timeout: Seconds without a line before the process is declared
            stalled, killed and restarted. Default: max(5 s, 20 intervals).
        start_timeout: Seconds allowed for the first line (driver start-up
            without persistence mode can take several seconds).
        power_field: The power column to read: "auto" (the default:
            "power.draw.instant" where the driver has it, else "power.draw"),
            "power.draw" (on Ampere and newer a 1-second average),
            "power.draw.average" or "power.draw.instant" (drivers from R535 on).

    Attributes:
        field_note: Why "auto" did not choose `power.draw.instant`, else None.
    """

    name = "nvidia-smi"

    def __init__(
        self,
        interval: float = 0.1,
        gpus: "list[int | str] | None" = None,
        stall_timeout: float | None = None,
        start_timeout: float = 20.0,
        power_field: str = "auto",
    ) -> None:
        super().__init__(interval)
        check_positive("stall_timeout", stall_timeout, allow_none=True)
        # A stream is stalled only when it misses its own period: shorter, every nvidia-smi
        # would be killed between two of its lines.
        check_number("stall_timeout", stall_timeout, low=self.interval, low_open=True,
                     high=math.inf, high_open=True, allow_none=True)
        check_positive("start_timeout", start_timeout)
        check_choice("power_field", power_field, POWER_FIELDS)
        self.power_field = power_field
        self.field_note: str | None = None
        self._field: str | None = None if power_field == "auto" else power_field
        self._field_lock = threading.Lock()
        check_gpus(gpus)
        self.gpus = gpus
        self.stall_timeout = stall_timeout or max(5.0, 20 * interval)
        self.start_timeout = start_timeout
        self._stop = threading.Event()
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def field(self) -> str:
        """The power field read, decided once (on first use) when `power_field` is "auto"."""
        with self._field_lock:
            if self._field is not None:
                return self._field
            exe = executable_or_none()
            if exe is None:
                return "power.draw"  # unavailable anyway; decide once it can be run
            field, note, definitive = detect_power_field(exe, visible_gpus(self.gpus))
            self.field_note = note
            if definitive or note == _hung(exe):  # a hung nvidia-smi is not asked again
                self._field = field
            return field

    @property
    def provenance(self) -> str:  # type: ignore[override]
        """"measured:nvidia-smi" for `power.draw`, else the field in brackets after it."""
        return provenance_of(self.field)

    def command(self, field: str | None = None, loop: bool = True) -> list[str]:
        """The stream's command line (`loop` False: one reading), reading `field`."""
        field = field or self.field
        # `$GREENSCREEN_NVIDIA_SMI` as given even where it is gone now: a restart then
        # fails and says so, rather than reading PATH's nvidia-smi, another tool.
        cmd = [os.environ.get(ENV_EXECUTABLE) or executable_or_none() or "nvidia-smi",
               "--query-gpu=" + ",".join(field if f == "power.draw" else f for f in FIELDS),
               "--format=csv,noheader,nounits"]
        cmd += [f"--loop-ms={max(1, round(self.interval * 1000))}"] if loop else []
        ids = visible_gpus(self.gpus)
        return cmd + (["-i", ",".join(ids)] if ids else [])

    def cpu_seconds(self) -> float:
        """The reader thread's CPU time plus the running nvidia-smi process's."""
        proc = self._proc
        child = proc_cpu_seconds(f"/proc/{proc.pid}/stat") if proc is not None else 0.0
        return super().cpu_seconds() + child

    def unavailable_reason(self) -> str | None:
        try:
            exe = resolve_executable()
        except ValueError as exc:
            return str(exc)
        if exe is None:
            return f"nvidia-smi not found on PATH (set {ENV_EXECUTABLE} to its path)"
        ids = visible_gpus(self.gpus)
        if ids == []:
            return "CUDA_VISIBLE_DEVICES hides every GPU"
        field = self.field  # a hung nvidia-smi is asked once: never again after that
        if self.field_note == _hung(exe):
            return self.field_note
        try:
            out = ask(self.command(field, loop=False))
        except subprocess.TimeoutExpired:
            return _hung(exe)
        except OSError as exc:
            return f"{exe} could not be run: {exc}"
        if out.returncode != 0:
            msg = (out.stdout + out.stderr).strip().splitlines()
            return f"{exe} exited with code {out.returncode}: {msg[-1] if msg else ''}"
        lines = out.stdout.strip().splitlines()
        if not lines:
            return f"{exe} lists no GPUs"
        bad = next((line for line in lines if parse_line(line, time.time()) is None), None)
        if bad is not None:
            return (f"{exe}'s output does not parse as --query-gpu={','.join(FIELDS)} with "
                    f"{field}: {bad.strip()[:120]!r}")
        return None

    def start(self, sink: Sink) -> None:
        if self._thread is not None:
            return
        # Decided here, before the reader thread runs nvidia-smi, and kept while it runs:
        # the provenance names the field the stream reads.
        self._field = self.field
        self._stop.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._supervise, args=(sink,),
                                        name="greenscreen-nvidia-smi", daemon=True)
        _LIVE.add(self)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=10)
        self._thread = None
        self._reap()
        os.close(self._wake_r)
        os.close(self._wake_w)
        _LIVE.discard(self)

    def _supervise(self, sink: Sink) -> None:
        backoff = 0.25
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                self._proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            except (OSError, ValueError) as exc:
                self.health.reason = f"nvidia-smi could not be started: {exc}"
            else:
                self._pump(self._proc, sink)
                self._reap()
            if self._stop.is_set():
                break
            self.health.restarts += 1
            # A process that ran a good while earns a quick restart; a crash loop backs off.
            backoff = 0.25 if time.monotonic() - t0 > 30 else min(backoff * 2, 10.0)
            self._wait(backoff)

    def _wait(self, seconds: float) -> None:
        select.select([self._wake_r], [], [], seconds)

    def _pump(self, proc: subprocess.Popen, sink: Sink) -> None:
        """Reads lines until the process ends, stalls, or we are stopped."""
        out, err = proc.stdout.fileno(), proc.stderr.fileno()
        buf, err_tail = b"", b""
        last = time.monotonic()
        limit = self.start_timeout
        watched = [out, err, self._wake_r]
        while not self._stop.is_set():
            ready, _, _ = select.select(watched, [], [], 0.5)
            if err in ready:
                chunk = os.read(err, 4096)
                if not chunk:  # stderr closed (e.g. sent to /dev/null): readable forever,
                    watched.remove(err)  # so select would return at once: a spinning core
                err_tail = (err_tail + chunk)[-2000:]
            if out in ready:
                data = os.read(out, 65536)
                if not data:
                    code = proc.wait()
                    tail = err_tail.decode(errors="replace").strip().splitlines()
                    self.health.reason = f"nvidia-smi exited with code {code}" + (
                        f": {tail[-1]}" if tail else ""
                    )
                    return
                *lines, buf = (buf + data).split(b"\n")
                samples = self._parse(lines)
                if samples:
                    last, limit = time.monotonic(), self.stall_timeout
                    sink(samples)
            if time.monotonic() - last > limit:
                self.health.stalls += 1
                self.health.reason = f"nvidia-smi printed no sample for {limit:.1f} s " \
                                     "(stalled); restarted"
                return

    def _parse(self, lines: list[bytes]) -> list[Sample]:
        now = time.time()
        samples = []
        for raw in lines:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            sample = parse_line(line, now)
            if sample is None:
                self.health.garbage_lines += 1
            else:
                samples.append(sample)
        return samples

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@atexit.register
def _stop_all() -> None:
    for source in list(_LIVE):
        source.stop()
