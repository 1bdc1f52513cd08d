"""Typed configuration: YAML files composed over dataclass schemas, overridden by dotted keys.

An unknown key or a value of the wrong type is an error naming the key and the valid choices;
nothing falls back silently to a default.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A configuration key or value that does not fit the schema."""


def _valid_keys(schema: Any, dotted: str) -> list[str]:
    node = schema
    for part in dotted.split(".")[:-1]:
        fields = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(node) else {}
        if part not in fields:
            return []
        node = fields[part].type if isinstance(fields[part].type, type) else getattr(node, part, None)
        if node is None:
            return []
    return sorted(f.name for f in dataclasses.fields(node)) if dataclasses.is_dataclass(node) else []


def build_config(schema: type[T], layers: Sequence[dict | str | Path] = (), overrides: Sequence[str] = ()) -> T:
    """Merge ``layers`` (dicts or YAML paths) and ``key=value`` ``overrides`` onto ``schema``.

    Returns an instance of the dataclass ``schema``.
    """
    base = OmegaConf.structured(schema)
    for layer in list(layers) + [OmegaConf.from_dotlist(list(overrides))]:
        if isinstance(layer, (str, Path)):
            layer = yaml.safe_load(Path(layer).read_text()) or {}
        try:
            base = OmegaConf.merge(base, layer)
        except ConfigKeyError as err:
            key = err.full_key or err.key or "?"
            valid = _valid_keys(schema, str(key))
            raise ConfigError(f"unknown config key {key!r}; valid keys here: {valid}") from None
        except OmegaConfBaseException as err:
            raise ConfigError(f"bad config value for {err.full_key!r}: {err.msg.splitlines()[0]}") from None
    return OmegaConf.to_object(base)


def to_dict(config: Any) -> dict:
    """A plain, YAML-serialisable dict of a config dataclass."""
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True)


def save_config(config: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
