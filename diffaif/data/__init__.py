"""Data layer: task encodings, episodes (collect, save, load, windows) and the exact Bayes filter."""
from diffaif.data.encoding import PartSpec, TaskEncoding, grid_encoding
from diffaif.data.episodes import EpisodeData, collect_episodes, load_episodes, save_episodes, windows
from diffaif.data.exact_filter import bayes_filter_update, filter_beliefs, predict_observations

__all__ = ["EpisodeData", "PartSpec", "TaskEncoding", "bayes_filter_update", "collect_episodes", "filter_beliefs",
           "grid_encoding", "load_episodes", "predict_observations", "save_episodes", "windows"]
