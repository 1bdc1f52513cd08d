"""Data layer: task encodings, episodes (collect, save, load, windows) and the exact Bayes filter.

Names load on first use (module ``__getattr__``): the exact filter and the encodings need numpy only,
so agents that use them (the oracle) do not import torch, which the episodes module needs.
"""
from diffaif.lazy import lazy_attributes

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


__getattr__ = lazy_attributes(__name__, _EXPORTS)
