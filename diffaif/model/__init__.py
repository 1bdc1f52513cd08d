"""The diffusion world model: score net, training, inpainting, save/load and evaluation."""
from diffaif.model.score_net import ScoreNet
from diffaif.model.train import (TrainConfig, TrainingDivergedError, WorldModelConfig, load_checkpoint,
                                 train_world_model)
from diffaif.model.world_model import ModelConfig, NoiseSchedule, WorldModel, known_window

__all__ = ["ModelConfig", "NoiseSchedule", "ScoreNet", "TrainConfig", "TrainingDivergedError", "WorldModel",
           "WorldModelConfig", "known_window", "load_checkpoint", "train_world_model"]
