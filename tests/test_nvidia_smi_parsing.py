"""Parsing of nvidia-smi's CSV output, in the real format, and GPU selection."""

import math

import pytest

from greenscreen.meters.nvidia_smi import parse_line, parse_value, visible_gpus

# Lines in the format nvidia-smi prints for
# --query-gpu=timestamp,index,uuid,name,power.draw,temperature.gpu,utilization.gpu,memory.used
WITH_UNITS = ("2026/11/22 06:03:04.123, 1, GPU-55555555-6666-7777-8888-999999999999, "
              "NVIDIA H200, 215.32 W, 45, 35 %, 1234 MiB")
NO_UNITS = "2026/11/22 06:03:04.123, 0, GPU-0000, NVIDIA A100-SXM4-80GB, 61.85, 33, 0, 4"
NA_POWER = "2026/11/22 06:03:04.123, 0, GPU-0000, Tesla K80, [N/A], 40, [Not Supported], 71"


@pytest.mark.parametrize("text, expected", [
    ("215.32 W", 215.32), ("35 %", 35.0), ("1234 MiB", 1234.0), ("45", 45.0), ("61.85", 61.85),
])
def test_parse_value_numbers_with_and_without_units(text, expected):
    assert parse_value(text) == expected


@pytest.mark.parametrize("text", [
    "[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", "[GPU is lost]", "", "garbage",
])
def test_parse_value_missing_is_nan_never_text(text):
    assert math.isnan(parse_value(text))


def test_parse_line_with_units():
    s = parse_line(WITH_UNITS, received=0.0)
    assert (s.index, s.name, s.power_w, s.temp_c, s.util_pct, s.mem_used_mib) == (
        1, "NVIDIA H200", 215.32, 45.0, 35.0, 1234.0)


def test_parse_line_uses_the_stamp_when_plausible():
    stamped = parse_line(NO_UNITS, received=0.0)
    assert stamped.t == 0.0  # a stamp far from "now" is distrusted
    from datetime import datetime
    now = datetime(2026, 11, 22, 6, 3, 4, 500000).timestamp()
    assert parse_line(NO_UNITS, received=now).t == pytest.approx(now - 0.377, abs=1e-6)


def test_parse_line_na_fields_are_nan():
    s = parse_line(NA_POWER, received=0.0)
    assert math.isnan(s.power_w) and math.isnan(s.util_pct) and s.temp_c == 40.0


@pytest.mark.parametrize("line", [
    "Unable to determine the device handle for GPU0000:65:00.0: Unknown Error",
    "timestamp, index, uuid, name, power.draw [W], temperature.gpu, utilization.gpu [%], x",
    "1, 2, 3",
])
def test_parse_line_rejects_garbage(line):
    assert parse_line(line, received=0.0) is None


@pytest.mark.parametrize("env, expected", [
    (None, None), ("", []), ("-1", []), ("1", ["1"]), ("0, 2", ["0", "2"]),
    ("GPU-abc,1", ["GPU-abc", "1"]), ("0,-1,2", ["0"]),
])
def test_visible_gpus_follows_cuda_visible_devices(monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    assert visible_gpus() == expected


def test_explicit_gpus_override_the_environment(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert visible_gpus([1, "GPU-x"]) == ["1", "GPU-x"]
