"""Config layers from text: TOML files and ``--set section.field=value`` assignments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import ConfigError, MGDConfig, build_config

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file as plain data; a missing or malformed file is a ConfigError."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"config file {str(p)!r} is a folder, not a file")
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc.strerror}") from None


def load_config(path: str | Path | None = None, *overrides: dict[str, Any]) -> MGDConfig:
    """Build a config from an optional TOML file plus override layers."""
    layers = [load_toml(path)] if path else []
    return build_config(*layers, *overrides)


def parse_assignment(text: str) -> dict[str, Any]:
    """Turn ``section.field=value`` into a nested override; the value is parsed as TOML
    (so ``[16, 8]``, ``0.5``, ``true``), falling back to a bare string."""
    if "=" not in text:
        raise ConfigError(f"--set expects section.field=value, not {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"--set expects section.field=value, not {text!r}")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


