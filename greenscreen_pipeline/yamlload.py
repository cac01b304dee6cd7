"""Reading config.yaml: safe_load semantics, numbers as YAML 1.2 reads them, and every
fault of the file itself (not UTF-8, a syntax error, a key given twice, an unquoted yes or
no) as the one error form of `ConfigError`.

PyYAML resolves scalars by YAML 1.1, where a float needs a dot and a signed exponent:
`1e-3` and `5e-1` are strings there. `Loader` adds YAML 1.2's float rule after PyYAML's
own, so those are numbers; everything else is `yaml.SafeLoader` (no object tags).
"""

from __future__ import annotations

import math
import re
import reprlib
import sys
from pathlib import Path
from typing import Any, Iterable

import yaml

from greenscreen.validation import nearest

from .errors import UsageError

# YAML 1.2 core schema floats (https://yaml.org/spec/1.2.2/#1032-tag-resolution); PyYAML's
# int and YAML 1.1 float rules come first, so 5 stays an int and 0.5 is read as before.
FLOAT_12 = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


class ConfigError(UsageError, ValueError):
    """One clear error: where in the file, what was given, and what is allowed."""

    prefix = "bad config: "

    def __init__(self, path: str, where: str, given: Any, allowed: str) -> None:
        super().__init__(f"{path}: {where}: got {shown(given)}; allowed: {allowed}.")
        self.where, self.given, self.allowed = where, given, allowed


# What an error shows of the value it got: a long list in full, or YAML aliases nested
# eight deep (438 bytes of config.yaml), printed a 351 MB line.
def shown(given: Any) -> str:
    shown = reprlib.Repr()  # attributes, not arguments: Python 3.11's Repr takes none
    shown.maxlevel, shown.maxstring, shown.maxother, shown.maxlong = 3, 120, 120, 60
    shown.maxtuple = shown.maxlist = shown.maxdict = shown.maxset = 8
    text = shown.repr(given)
    return text if len(text) <= 400 else text[:400] + "...(cut)"


class Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` with YAML 1.2's floats (`1e-3`, `5e-1`, `1E6`) as numbers."""


BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
# Numbers YAML 1.1 reads otherwise than YAML 1.2 and their writer: 010 (octal: 8), 08 (a
# float, 8.0), 1:30 and 1:30:00 (base 60: 90, 5400). 0 itself, 00.5, 0.5 and 0x10 are not.
YAML_11_ONLY = re.compile(r"^[-+]?(0[0-9_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)$")
MERGE = "tag:yaml.org,2002:merge"
NUMBER_RANGE = "a number within a float's range (at most about 1.8e308 either way)"


def refused(node: yaml.Node, where: str = "") -> tuple[str, Any, str] | None:
    """What PyYAML reads, but otherwise than a config's writer meant, in the document
    under `node`: (where, given, allowed) of the first, or None. A key given twice in one
    mapping (the last would win silently), YAML 1.1's unquoted yes, no, on and off
    (booleans there: `country: NO` read False, `[yes, no, "off"]` two booleans and a
    string), and an integer beyond a float's range (every number the config gives is
    used as a float somewhere: `batch_size: 999...9` broke with an OverflowError, and
    over 4300 digits Python does not read it at all). `where` is the key path and line,
    as other config errors give it."""
    seen, todo = set(), [(node, where)]
    while todo:
        node, where = todo.pop(0)
        if id(node) in seen:  # an alias's node is checked once
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode) and node.tag == BOOL \
                and node.value.lower() not in ("true", "false"):
            return _at(where or "top level", node), node.value, (
                "true or false for a switch (YAML 1.1 reads an unquoted yes, no, on or off "
                f"as one), or text in quotes: '{node.value}'")
        if isinstance(node, yaml.ScalarNode) and node.tag in (INT, FLOAT) \
                and node.style is None and YAML_11_ONLY.match(node.value):
            return _at(where or "top level", node), node.value, (
                f"a number as YAML 1.2 reads it: {_meant(node.value)} (YAML 1.1 reads a "
                "leading 0 as octal and 1:30 as base 60), or text in quotes: "
                f"'{node.value}'")
        if isinstance(node, yaml.ScalarNode) and node.tag == INT and not _in_float_range(node):
            digits = sum(c.isdigit() for c in node.value)
            shown = node.value if len(node.value) <= 24 else \
                f"{node.value[:8]}...{node.value[-4:]} ({digits} digits)"
            return _at(where or "top level", node), shown, NUMBER_RANGE
        if isinstance(node, yaml.SequenceNode):
            todo += [(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            lines: dict = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                path = f"{where}.{name}" if where else name
                if isinstance(key, yaml.ScalarNode) and key.tag != MERGE:
                    read = _read_as(key)  # by what it reads as: 1 and 0x1 are one key
                    if read in lines:  # `<<` merges are left out: YAML lets keys override them
                        return _at(path, key), name, (
                            f"each key once in a mapping ({name!r} is already at line "
                            f"{lines[read]})")
                    lines[read] = key.start_mark.line + 1
                    todo.append((key, path))  # a key `on` is a boolean as a value is
                todo.append((value, path))
    return None


def _meant(text: str) -> str:
    """What a YAML 1.1-only number most likely meant, as advice: 010 -> "write 10"."""
    if ":" in text:
        return "seconds or minutes as one number"
    sign, digits = (text[0], text[1:]) if text[0] in "+-" else ("", text)
    return f"write {sign}{digits.lstrip('0_') or '0'}"


def _in_float_range(node: yaml.ScalarNode) -> bool:
    """Whether an integer scalar reads as an int a float can hold (sys.float_info.max)."""
    try:
        return finite(Loader("").construct_object(node))
    except ValueError:  # over Python's 4300 digits for int(str)
        return False


def _read_as(key: yaml.ScalarNode):
    """A mapping key as the loader reads it (its tag and value), its text where it cannot."""
    try:
        value = Loader("").construct_object(key)
        hash(value)
    except (yaml.YAMLError, TypeError, ValueError):
        return ("text", key.value)
    return (type(value).__name__, value)


def _at(where: str, node: yaml.Node) -> str:
    return f"{where} (line {node.start_mark.line + 1}, column {node.start_mark.column + 1})"


Loader.add_implicit_resolver("tag:yaml.org,2002:float", FLOAT_12, list("-+.0123456789"))
Loader.add_constructor("tag:yaml.org,2002:bool", Loader.construct_yaml_bool)


def read(path: str) -> Any:
    """The YAML document in `path`. Raises ConfigError when the file cannot be read, is not
    UTF-8 text, or is not valid YAML (with its line and column)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(path, "file", path, f"a readable YAML file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(path, f"line {line}, column {column}",
                          f"byte 0x{data[exc.start]:02x}", "UTF-8 text (save the file as "
                          "UTF-8)") from None
    try:
        loader = Loader(text)  # a SafeLoader subclass: no object tags
        try:
            node = loader.get_single_node()
            fault = refused(node) if node is not None else None
            if fault:
                raise ConfigError(path, *fault)
            return loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
        problem = exc.problem or exc.context or "a YAML error"
        if exc.context and context is not None and context is not mark:
            problem = f"{exc.context} at line {context.line + 1}, column " \
                      f"{context.column + 1}: {problem}"
        if mark is None:
            raise ConfigError(path, "file", problem, "valid YAML") from None
        lines = text.splitlines()
        given = lines[mark.line].strip() if mark.line < len(lines) else ""
        raise ConfigError(path, f"line {mark.line + 1}, column {mark.column + 1}", given,
                          f"valid YAML ({problem})") from None
    except yaml.YAMLError as exc:  # a reader error: a character YAML does not allow
        at = getattr(exc, "position", None)
        if not isinstance(at, int):
            raise ConfigError(path, "file", str(exc).splitlines()[0], "valid YAML") from None
        line, column = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
        raise ConfigError(path, f"line {line}, column {column}", f"character {text[at]!r}",
                          "printable YAML text (no control characters)") from None


def finite(value: Any) -> bool:
    """Whether `value` is not a number, or one a float holds finitely: `.inf` and `.nan`
    are not, nor an int beyond a float's range (float() of it raises OverflowError)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= sys.float_info.max
    return not isinstance(value, float) or math.isfinite(value)


def hint(value: Any, names: Iterable[Any], cutoff: float = 0.6) -> str:
    """" (did you mean 'max'?)" for a misspelt word of config.yaml, else "": a name equal
    but for case first (NONE: None), then one the value begins with (maximize: max), then
    the nearest by `greenscreen.validation.nearest`'s rule (Adamm: Adam)."""
    if not isinstance(value, str):
        return ""
    names, text = list(names), value.strip().lower()
    near = next((n for n in names if str(n).lower() == text), None) or next(
        (n for n in names if isinstance(n, str) and len(n) >= 3
         and text.startswith(n.lower())), None) or nearest(value, names, cutoff)
    return f" (did you mean {near!r}?)" if near is not None and near != value else ""
