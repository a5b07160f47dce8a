"""Checks of values read from TOML, each failing with one line that starts with the key path."""

import json
import math
import numbers
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from workbench.errors import WorkbenchError

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHOW_LIMIT = 60


def key_path(parent: str, key: str) -> str:
    """Append ``key`` to the rendered key path ``parent``, quoting it as TOML would."""
    part = key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
    return f"{parent}.{part}" if parent else part


def show(value: Any) -> str:
    """Render a value for an error message: TOML-like, on one line, shortened if long."""
    text = _render(value)
    return text if len(text) <= _SHOW_LIMIT else text[: _SHOW_LIMIT - 3] + "..."


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = ", ".join(f"{key_path('', str(k))} = {_render(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return " ".join(repr(value).split())


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer (booleans are not)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (booleans are not)."""
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class Checker:
    """Validators that raise ``error`` with a message ``"<key path>: <problem>"``."""

    error: type[WorkbenchError]

    def fail(self, path: str, problem: str) -> NoReturn:
        """Raise the error for the key at ``path``."""
        raise self.error(f"{path}: {problem}")

    def table(self, value: Any, path: str) -> Mapping:
        """Return ``value`` if it is a table."""
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a table, got {show(value)}")
        return value

    def keys(
        self,
        table: Mapping,
        path: str,
        required: Sequence[str] = (),
        optional: Sequence[str] = (),
        noun: str = "key",
    ) -> None:
        """Refuse keys of ``table`` outside ``required`` and ``optional``, then missing ones."""
        allowed = (*required, *optional)
        for key in table:
            if key not in allowed:
                self.fail(
                    key_path(path, key),
                    f"unknown {noun} (expected one of: {', '.join(allowed)})",
                )
        for key in required:
            if key not in table:
                self.fail(key_path(path, key), f"required {noun} is missing")

    def integer(self, value: Any, path: str, low: int, high: int | None = None) -> int:
        """Return ``value`` if it is an integer in [low, high] (no upper bound if None)."""
        if is_integer(value) and value >= low and (high is None or value <= high):
            return int(value)
        if high is not None:
            wanted = f"an integer from {low} to {high}"
        else:
            wanted = {0: "a non-negative integer", 1: "a positive integer"}.get(
                low, f"an integer of at least {low}"
            )
        self.fail(path, f"must be {wanted}, got {show(value)}")

    def number(self, value: Any, path: str) -> float:
        """Return ``value`` if it is a finite number."""
        if not is_number(value):
            self.fail(path, f"must be a finite number, got {show(value)}")
        return value

    def positive_number(self, value: Any, path: str) -> float:
        """Return ``value`` if it is a finite number greater than zero."""
        if not (is_number(value) and value > 0):
            self.fail(path, f"must be a positive number, got {show(value)}")
        return value

    def non_negative_number(self, value: Any, path: str) -> float:
        """Return ``value`` if it is a finite number of at least zero."""
        if not (is_number(value) and value >= 0):
            self.fail(path, f"must be a non-negative number, got {show(value)}")
        return value

    def number_in(
        self, value: Any, path: str, interval: tuple[float, float], closed: str = "both"
    ) -> float:
        """Return ``value`` if it lies in ``interval``, closed on "both", "left" or "right"."""
        low, high = interval
        low_closed, high_closed = closed in ("both", "left"), closed in ("both", "right")
        if is_number(value):
            above = value >= low if low_closed else value > low
            below = value <= high if high_closed else value < high
            if above and below:
                return value
        left, right = "[" if low_closed else "(", "]" if high_closed else ")"
        self.fail(path, f"must be a number in {left}{low:g}, {high:g}{right}, got {show(value)}")

    def string(self, value: Any, path: str) -> str:
        """Return ``value`` if it is a non-empty string."""
        if not (isinstance(value, str) and value):
            self.fail(path, f"must be a non-empty string, got {show(value)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        """Return ``value`` if it is true or false."""
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {show(value)}")
        return value
