"""nvidia-smi's CSV lines as `Sample`s: the fields the stream asks for, and the parsing of
each line (a value, its time stamp, a line that is not nvidia-smi's)."""

from __future__ import annotations

import math
from datetime import datetime

from .base import NAN, Sample

FIELDS = (
    "timestamp",
    "index",
    "uuid",
    "name",
    "power.draw",
    "temperature.gpu",
    "utilization.gpu",
    "memory.used",
)
_MISSING = ("n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "")


def parse_value(text: str) -> float:
    """Parses one nvidia-smi field: '215.32 W', '35 %', '[N/A]' -> float/NaN."""
    text = text.strip()
    if text.lower() in _MISSING or text.startswith("["):
        return NAN
    number = text.split()[0] if text else text
    try:
        return float(number)
    except ValueError:
        return NAN


def parse_timestamp(text: str, fallback: float) -> float:
    """Parses nvidia-smi's local-time stamp; falls back when it is implausible."""
    try:
        t = datetime.strptime(text.strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
    except ValueError:
        return fallback
    # A stamp far from now means a clock or time-zone mismatch: trust our clock.
    return t if abs(t - fallback) < 5.0 else fallback


def _garbage(text: str) -> bool:
    """A reading that is neither a number (with or without its unit) nor a missing one."""
    return math.isnan(parse_value(text)) and text.strip().lower() not in _MISSING and \
        not text.strip().startswith("[")


def parse_line(line: str, received: float) -> Sample | None:
    """Parses one `--format=csv,noheader[,nounits]` line; None if it is garbage (a field
    count, index or reading that is not nvidia-smi's)."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != len(FIELDS) or any(_garbage(p) for p in parts[4:]):
        return None
    try:
        index = int(parts[1])
    except ValueError:
        return None
    return Sample(
        t=parse_timestamp(parts[0], received),
        index=index,
        uuid=parts[2],
        name=parts[3],
        power_w=parse_value(parts[4]),
        temp_c=parse_value(parts[5]),
        util_pct=parse_value(parts[6]),
        mem_used_mib=parse_value(parts[7]),
    )
