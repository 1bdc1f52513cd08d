"""Typed configuration: YAML files composed over dataclass schemas, overridden by dotted keys.

An unknown key or a value of the wrong type is an error naming the key and the valid choices;
nothing falls back silently to a default.
"""
from __future__ import annotations

import dataclasses
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

T = TypeVar("T")

PRESET_KINDS = ("experiments", "model")   # folders of diffaif/configs/, the package data


class ConfigError(ValueError):
    """A configuration key or value that does not fit the schema."""


def _preset_dir(kind: str):
    """The package-data folder of presets of ``kind`` (read through importlib.resources, so presets are
    found in an installed package as in a source checkout)."""
    if kind not in PRESET_KINDS:
        raise ConfigError(f"unknown preset kind {kind!r}; valid choices: {list(PRESET_KINDS)}")
    return resources.files("diffaif") / "configs" / kind


def preset_names(kind: str) -> list[str]:
    """The names of the presets of ``kind`` (``diffaif/configs/<kind>/<name>.yaml``), sorted."""
    return sorted(entry.name[:-len(".yaml")] for entry in _preset_dir(kind).iterdir()
                  if entry.name.endswith(".yaml"))


def preset_path(kind: str, name: str) -> Path:
    """The file of preset ``name`` of ``kind``; a missing preset is a ConfigError naming the valid ones."""
    path = _preset_dir(kind) / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {kind} preset {name!r}; valid choices: {preset_names(kind)}")
    return Path(str(path))


def preset_or_file(kind: str, name_or_path: str | Path) -> Path:
    """A YAML path as given (anything ending in .yaml/.yml, holding a folder separator or naming an
    existing path, which ``read_yaml`` then checks), else the preset of that name (``preset_path``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1 or path.exists():
        return path
    return preset_path(kind, str(name_or_path))


def _dataclass_in(annotation: Any) -> type | None:
    """The dataclass an annotation names: itself, or the dataclass inside ``X | None`` and the like."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    return next((arg for arg in typing.get_args(annotation) if dataclasses.is_dataclass(arg)), None)


def _valid_keys(schema: Any, dotted: str) -> list[str]:
    """The field names of the dataclass that holds the last part of ``dotted`` ([] where none does).

    ``typing.get_type_hints`` resolves the string annotations of ``from __future__ import annotations``.
    """
    node = schema
    for part in dotted.split(".")[:-1]:
        hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        node = _dataclass_in(hints.get(part))
        if node is None:
            return []
    return sorted(f.name for f in dataclasses.fields(node))


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML file; a missing, unreadable or malformed file, or one whose top level is
    not a mapping, is a ConfigError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory, not a YAML file")
    try:
        layer = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read: {err}") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML{line}: {problem}") from None
    if layer is None:
        return {}
    if not isinstance(layer, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys at its top level, "
                          f"not a {type(layer).__name__}")
    return layer


def build_config(schema: type[T], layers: Sequence[dict | str | Path] = (), overrides: Sequence[str] = ()) -> T:
    """Merge ``layers`` (dicts or YAML paths) and ``key=value`` ``overrides`` onto ``schema``.

    Returns an instance of the dataclass ``schema``.
    """
    base = OmegaConf.structured(schema)
    for layer in list(layers) + [OmegaConf.from_dotlist(list(overrides))]:
        if isinstance(layer, (str, Path)):
            layer = read_yaml(layer)
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
    """Write the resolved ``config`` as YAML, atomically."""
    from diffaif.data.files import atomic_write_text  # here, not above: diffaif.data loads torch

    atomic_write_text(path, yaml.safe_dump(to_dict(config), sort_keys=False))
