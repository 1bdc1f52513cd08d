"""Active inference on MiniGrid from the egocentric view: a belief map, a diffusion model of the
unseen cells, and expected free energy with information gain about the map.

Orchestration only: the map and pose live in ``planning/belief_map.py``, the map model in
``model/map_model.py``, the EFE and the learned local rules in ``planning/map_planner.py``. The agent
observes MiniGrid's symbolic 7x7 view and its direction (``obs_mode="view", obs_direction=True``);
the compact state in ``info["state"]`` is never read. Per step: plan on the belief map, act, dead-
reckon the pose, write the new view into the map, count the outcome of the action under the local
rule it tried. The warm-up is the same loop without a map model (a uniform prior on unseen cells,
so the information gain drives a frontier search); its final maps train the model.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from diffaif.agents.base import Agent, env_steps
from diffaif.config import build_config, save_config
from diffaif.data.files import atomic_write_text
from diffaif.envs.minigrid_task import ACTION_NAMES, N_CELL_CODES, MiniGridTask
from diffaif.model.map_model import MapInpainter, MapModelConfig, train_map_model
from diffaif.planning.belief_map import OPAQUE_CODES, UNKNOWN, BeliefMap
from diffaif.planning.efe import categorical_entropy
from diffaif.planning.map_planner import LocalRules, MapEFEPlanner, MapPlan, MapPlannerConfig

CONFIG_FILE, RULES_FILE, MAPS_FILE, MODEL_DIR = "config.yaml", "rules.json", "maps.npz", "map_model"


@dataclass
class MapAIFConfig:
    planner: MapPlannerConfig = field(default_factory=MapPlannerConfig)
    model: MapModelConfig = field(default_factory=MapModelConfig)
    map_radius: int = 26               # the belief map spans (2R+1)² cells around the start
    max_warmup_steps: int = 2000       # the warm-up uses at most this much of the budget it is given
    train_seconds: float = 60.0        # wall-clock cap of the map model's training
    min_maps: int = 4                  # fewer warm-up maps than this: no model, the uniform prior stays

    def __post_init__(self):
        if self.map_radius < 7 or self.min_maps < 1 or self.train_seconds <= 0 or self.max_warmup_steps < 0:
            raise ValueError("need map_radius >= 7, min_maps >= 1, train_seconds > 0 and max_warmup_steps >= 0")


def find_view_task(env: gym.Env) -> MiniGridTask:
    """The ``MiniGridTask`` inside ``env``, checked to give the view and direction as a vector."""
    layer = env
    while isinstance(layer, gym.Wrapper) and not isinstance(layer, MiniGridTask):
        layer = layer.env
    if not isinstance(layer, MiniGridTask):
        raise ValueError(f"MapAIFAgent needs a MiniGrid env (diffaif.envs.make_env('MiniGrid-...')), got {env}")
    if layer.obs_mode != "view" or not layer.obs_direction or layer.obs_floor or layer.obs_index:
        raise ValueError("MapAIFAgent observes the view and direction only: make the env with obs_mode='view', "
                         "obs_direction=True, obs_floor=False, obs_index=0")
    return layer


class MapAIFAgent(Agent):
    """Plans on a belief map by expected free energy (see ``planning/map_planner.py``)."""

    name = "aif_map"

    def __init__(self, env: gym.Env, seed: int | None = None, config: MapAIFConfig | None = None):
        super().__init__(env, seed)
        self.config = config or MapAIFConfig()
        self.seed = 0 if seed is None else int(seed)
        self.task = find_view_task(env)
        self.view_size = self.task.view_size
        self.action_names = [ACTION_NAMES[a] for a in self.task.actions]
        self.rules = LocalRules()
        self.maps: list[np.ndarray] = []          # each finished episode's known cells: the model's data
        self.inpainter: MapInpainter | None = None
        self.training_log: dict = {}
        self.planner = MapEFEPlanner(self.action_names, self.config.planner, None, seed=self.seed)
        self.belief = BeliefMap(self.config.map_radius, self.view_size)
        self._plan: MapPlan | None = None
        self._last_ms = 0.0
        self.revealed_gain = 0.0                 # nats: the information the last step brought

    def _view(self, observation: Any) -> tuple[np.ndarray, int]:
        """The (V, V) view grid and the direction of an observation."""
        return self.task.view_grid(observation), int(np.asarray(observation)[self.view_size ** 2])

    # ---- learning ----------------------------------------------------------------------------
    def warm_up(self, env: gym.Env, steps: int, seed: int) -> int:
        """Up to ``max_warmup_steps`` of the ``steps`` offered: the planner without a map model, then the
        model's training on the maps of the warm-up's episodes."""
        used = self._play(env, min(steps, self.config.max_warmup_steps), np.random.default_rng(seed))
        if used:
            self.train()
        return used

    def learn(self, total_env_steps: int) -> "MapAIFAgent":
        """Stable-Baselines3's ``learn`` on the agent's env: the warm-up (when there is no map model
        yet), then episodes of acting, the rules still counting, until ``total_env_steps``. → the agent."""
        if total_env_steps < 1:
            raise ValueError(f"total_env_steps must be >= 1, got {total_env_steps}")
        rng = np.random.default_rng([self.seed, len(self.maps)])
        used = self.warm_up(self.env, total_env_steps, int(rng.integers(2**31))) if self.inpainter is None else 0
        used += self._play(self.env, total_env_steps - used, rng)
        return self

    def _play(self, env: gym.Env, steps: int, rng: np.random.Generator) -> int:
        """Episodes of acting and learning until ``steps`` interactions (the last one cut); → used."""
        used = 0
        while used < steps:
            obs, info = env.reset(seed=int(rng.integers(2**31)))
            self.reset(obs, info)
            done = False
            while not done:
                action = self.act(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                used += env_steps(info)
                truncated = truncated or used >= steps
                self.observe(action, reward, obs, terminated, truncated, info)
                done = terminated or truncated
        return used

    def train(self) -> None:
        """Fit the map model to the maps of the finished episodes (kept: no model below ``min_maps``)."""
        if len(self.maps) < self.config.min_maps:
            return
        model = dataclasses.replace(self.config.model, seed=self.config.model.seed + self.seed)
        self.inpainter, self.training_log = train_map_model(self.maps, N_CELL_CODES, UNKNOWN, model,
                                                            self.config.train_seconds)
        self.planner.inpainter = self.inpainter

    # ---- acting ------------------------------------------------------------------------------
    def reset(self, observation: Any, info: dict | None = None) -> None:
        self.belief.reset(*self._view(observation))
        self._plan = None

    def act(self, observation: Any) -> int:
        start = time.perf_counter()
        self._plan = self.planner.plan(self.belief, self.rules)
        self._last_ms = 1000 * (time.perf_counter() - start)
        return self._plan.action

    def observe(self, action: Any, reward: float, next_observation: Any, terminated: bool, truncated: bool,
                info: dict | None = None) -> None:
        name = self.action_names[int(action)]
        front, carried = self.belief.front(), self.belief.carried
        if terminated:
            if name == "forward":
                self.rules.record("forward", front, carried, "goal" if reward > 0 else "trap")
        else:
            view, direction = self._view(next_observation)
            if name == "forward":
                known = self.rules.outcome("forward", front, carried)
                prior = known == "pass" if known is not None else front not in OPAQUE_CODES
                moved = self.belief.moved_forward(view, direction, prior)
                self.belief.move(moved, direction)
                self.rules.record("forward", front, carried, "pass" if moved else "block")
            else:
                self.belief.move(False, direction)
            newly = self.belief.update(view, direction)
            if name in ("toggle", "pickup"):
                self.rules.record(name, front, carried, (self.belief.front(), self.belief.carried))
            self.revealed_gain = self._realised_gain(newly)
        if terminated or truncated:
            box = self.belief.known_box(0)
            self.maps.append(self.belief.cells[box].copy())

    def _realised_gain(self, newly: np.ndarray) -> float:
        """The entropy, under the last plan's marginals, of the cells this step revealed (nats)."""
        if self._plan is None:
            return 0.0
        entropy = categorical_entropy(torch.from_numpy(self._plan.marginals)).numpy()
        return float(np.sum(entropy[newly[self._plan.crop]]))

    def step_log(self) -> dict[str, Any]:
        if self._plan is None:
            return {}
        return {"decision_ms": self._last_ms, "q": self._plan.q.tolist(), "expected_info_gain": self._plan.info_gain,
                "known_cells": int(np.sum(self.belief.cells != UNKNOWN))}

    # ---- persistence -------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the config, the learned rules, the maps and the map model into the folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_config(self.config, path / CONFIG_FILE)
        atomic_write_text(path / RULES_FILE, json.dumps({"seed": self.seed, **self.rules.state_dict()}))
        np.savez_compressed(path / MAPS_FILE, *self.maps)
        if self.inpainter is not None:
            self.inpainter.save(path / MODEL_DIR)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env) -> "MapAIFAgent":
        """The agent ``save`` wrote into ``path``, acting on ``env``."""
        path = Path(path)
        if not (path / RULES_FILE).is_file():
            raise FileNotFoundError(f"{path} holds no saved map agent ({RULES_FILE} is missing)")
        state = json.loads((path / RULES_FILE).read_text())
        agent = cls(env, state["seed"], build_config(MapAIFConfig, [path / CONFIG_FILE]))
        agent.rules = LocalRules.from_state_dict(state)
        with np.load(path / MAPS_FILE) as maps:
            agent.maps = [maps[f"arr_{i}"] for i in range(len(maps.files))]
        if (path / MODEL_DIR).is_dir():
            agent.inpainter = MapInpainter.load(path / MODEL_DIR, UNKNOWN)
            agent.planner.inpainter = agent.inpainter
        return agent


__all__ = ["MapAIFAgent", "MapAIFConfig", "find_view_task"]
