"""Loading YAML configuration files into typed, validated models.

Every gridcoop config (region, gateway, keeper) goes through :func:`load_model`, so a malformed
file is always refused the same way: a :class:`~gridcoop_sdk.exceptions.ConfigError` whose
message names the file, the key path (``meters[2].port``) and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .exceptions import ConfigError

M = TypeVar("M", bound=BaseModel)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def read_yaml(path: str | Path) -> Any:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError as exc:
        raise ConfigError("file not found", source=str(p)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not a text file (UTF-8 YAML expected; byte {exc.start} is 0x{exc.object[exc.start]:02x})",
                          source=str(p)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(p)) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML{where}: {problem}", source=str(p)) from exc


def validate(data: Any, model: type[M], *, source: str) -> M:
    """Validate already-parsed data against ``model``; errors name the key path."""
    if data is None:
        raise ConfigError("the file is empty", source=source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # A misspelt key also makes its real key "missing": report the misspelling first.
        errors = sorted(exc.errors(), key=lambda e: e.get("type") != "extra_forbidden")
        first = errors[0]
        key = _loc(tuple(first.get("loc", ())))
        msg = first.get("msg", "invalid value")
        if first.get("type") == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        more = len(errors) - 1
        if more:
            msg += f" (and {more} more problem{'s' if more > 1 else ''})"
        raise ConfigError(msg, source=source, key=key) from exc


def load_model(path: str | Path, model: type[M]) -> M:
    """Read the YAML file at ``path`` and validate it as ``model``."""
    return validate(read_yaml(path), model, source=str(path))
