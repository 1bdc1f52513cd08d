"""Data layer: task encodings, episodes (collect, save, load, windows) and the exact Bayes filter.

Names load on first use (module ``__getattr__``): the exact filter and the encodings need numpy only,
so agents that use them (the oracle) do not import torch, which the episodes module needs.
"""
import importlib
from typing import Any

_EXPORTS = {
    "PartSpec": "diffaif.data.encoding", "TaskEncoding": "diffaif.data.encoding",
    "grid_encoding": "diffaif.data.encoding",
    "EpisodeData": "diffaif.data.episodes", "collect_episodes": "diffaif.data.episodes",
    "load_episodes": "diffaif.data.episodes", "save_episodes": "diffaif.data.episodes",
    "windows": "diffaif.data.episodes",
    "bayes_filter_update": "diffaif.data.exact_filter", "filter_beliefs": "diffaif.data.exact_filter",
    "predict_observations": "diffaif.data.exact_filter",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'diffaif.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
