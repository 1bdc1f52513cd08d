"""The active-inference agent with a diffusion world model (Algorithm 1 of the method paper).

Orchestration only: data collection and training live in ``diffaif.data`` / ``diffaif.model``, the
EFE maths and candidate policies in ``diffaif.planning``. The loop:
collect initial data with a random policy → train → for each step: plan (inpaint rollouts of all
candidates, score by EFE, ``P(π) = softmax(−γG)``), act, add the transition to the data set, and
retrain when the configured rule fires.

The agent is also the public ``diffaif.AIFAgent``, in Stable-Baselines3's conventions: ``learn`` runs
Algorithm 1 for an interaction budget, ``predict`` acts (``evaluate_policy`` works), ``save`` writes
one folder that ``load`` restores to the same decisions, ``from_config`` reads a preset.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from diffaif.agents.base import Agent, env_steps
from diffaif.config import build_config, preset_or_file, read_yaml, save_config, to_dict
from diffaif.data.episodes import EpisodeData, hidden_state, load_episodes, model_view, save_episodes
from diffaif.data.files import atomic_write_text
from diffaif.model.train import EPISODES_FILE, WorldModelConfig, train_world_model
from diffaif.model.world_model import PRECISIONS, WorldModel
from diffaif.planning.exploration import DirectedExploration
from diffaif.planning.planner import PlannerConfig
from diffaif.tasks import Planner, task_planning

RETRAIN_RULES = ("never", "episodes", "steps", "surprise")
WARMUP_POLICIES = ("random", "novelty")
# Planner attributes its decisions depend on besides the model and the data set: the likelihood cache
# (sampled once, with the planner's generator) and the continuous planners' warm starts.
PLANNER_CACHES = ("_likelihood", "_cem_mean", "_previous")
# The files of a saved agent folder (``DiffusionAIFAgent.save``).
AGENT_CONFIG_FILE, WORLD_MODEL_CONFIG_FILE, AGENT_STATE_FILE, PLANNER_STATE_FILE = (
    "config.yaml", "world_model.yaml", "agent.json", "planner.pt")


@dataclass
class AIFConfig:
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    model_preset: str | None = None                  # diffaif/configs/model/<preset>.yaml, a .yaml path, or
                                                     # None: the task family's
    world_model: dict[str, Any] = field(default_factory=dict)   # overrides of that preset (model.*, train.*)
    # A saved world model (``<run>/model``; "{seed}" is replaced by the agent's seed) used instead of the
    # initial training; the run's ``episodes.npz`` becomes the agent's data set and its interaction budget.
    pretrained: str | None = None
    # Retraining rule: "never"; every `retrain_every` episodes or steps; or "surprise": when the mean
    # surprise −log q(o_{t+1}) of the last `retrain_every` steps exceeds `surprise_threshold` nats.
    retrain: str = "episodes"
    retrain_every: int = 50
    retrain_steps: int = 300                         # training steps per retrain, from the current weights
    retrain_lr: float | None = None                  # peak learning rate of a retrain (None: the training's)
    surprise_threshold: float = 1.0
    # World models trained on the same data with different seeds; > 1 gives the planner an ensemble
    # for the parameter information gain (novelty) of continuous tasks.
    ensemble: int = 1
    # How the warm-up collects data: "random" (uniform actions) or "novelty" (directed exploration by the
    # expected information gain about the transitions, planning/exploration.py: categorical observations
    # and Discrete actions); None: the task family's.
    warmup_policy: str | None = None
    # Each random warm-up action is held for a number of steps drawn uniformly from 1..warmup_hold
    # (temporally extended exploration, as in εz-greedy): runs of one action reach states a policy
    # switching every step rarely does.
    warmup_hold: int = 1
    device: str = "cpu"
    precision: str = "fp32"                          # "bf16": autocast the score net when planning
    compile: bool = False                            # torch.compile the score net for planning
    run_dir: str | None = None                       # where checkpoints go (default: a temporary folder)
    progress: bool = False

    def __post_init__(self):
        if self.retrain not in RETRAIN_RULES:
            raise ValueError(f"retrain must be one of {RETRAIN_RULES}, got {self.retrain!r}")
        if self.retrain_every < 1:
            raise ValueError(f"retrain_every must be >= 1, got {self.retrain_every}")
        if self.retrain_lr is not None and not self.retrain_lr > 0:
            raise ValueError(f"retrain_lr must be > 0 (or null: the training's), got {self.retrain_lr}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.ensemble < 1:
            raise ValueError(f"ensemble must be >= 1, got {self.ensemble}")
        if self.warmup_hold < 1:
            raise ValueError(f"warmup_hold must be >= 1, got {self.warmup_hold}")
        if self.warmup_policy not in (None, *WARMUP_POLICIES):
            raise ValueError(f"warmup_policy must be one of {WARMUP_POLICIES} (or null: the task family's), "
                             f"got {self.warmup_policy!r}")
        if self.warmup_policy == "novelty" and self.warmup_hold > 1:
            raise ValueError("warmup_hold holds random actions; it does not apply to warmup_policy 'novelty'")


class DiffusionAIFAgent(Agent):
    """Plans by Monte Carlo expected free energy over inpainted rollouts of a diffusion world model."""

    name = "aif"

    def __init__(self, env: gym.Env, seed: int | None = None, config: AIFConfig | None = None, **overrides: Any):
        """``overrides``: AIFConfig keys over ``config`` (nested as dicts), e.g.
        ``DiffusionAIFAgent(env, world_model={"train": {"steps": 500}})``."""
        super().__init__(env, seed)
        self.config = build_config(AIFConfig, [to_dict(config or AIFConfig()), overrides]) if overrides else (config or AIFConfig())
        self.seed = 0 if seed is None else int(seed)
        self.task = task_planning(env, self.config.planner)
        self.world_model_config = build_config(WorldModelConfig, [
            preset_or_file("model", self.config.model_preset or self.task.model_preset), self.config.world_model])
        if self.task.span > self.world_model_config.model.length:   # before any training, not after it
            raise ValueError(f"planner context + 1 + horizon = {self.task.span} exceeds the world model's window "
                             f"length {self.world_model_config.model.length} (model.length)")
        self.data: EpisodeData | None = None
        self.model: WorldModel | None = None
        self.ensemble: list[WorldModel] = []             # all members; self.model is the first
        self.planner: Planner | None = None
        self.run_dir = Path(self.config.run_dir) if self.config.run_dir else None  # made on first training
        self._observations: list = []                   # as the world model sees them (``_seen``)
        self._actions: list[int] = []
        self._last_plan = None
        self._last_ms = 0.0
        self._surprise: list[float] = []
        self._since_retrain = 0
        self._episodes_done = 0
        self._recording = False
        self.trainings = 0
        if self.config.pretrained:
            path = Path(self.config.pretrained.format(seed=self.seed))
            model = WorldModel.load(path, self.config.device).set_runtime(self.config.precision, self.config.compile)
            episodes = path.parent / EPISODES_FILE
            if not episodes.is_file():
                raise FileNotFoundError(f"{episodes} is missing: a pretrained model needs the episodes it was "
                                        f"trained on (train_world_model writes them) to state its budget")
            self.data = load_episodes(episodes)
            self._set_model([model])  # after the data: the planner learns from it

    # ---- model -------------------------------------------------------------------------------
    def _set_model(self, models: WorldModel | list[WorldModel]) -> None:
        self.ensemble = list(models) if isinstance(models, list) else [models]
        self.model = self.ensemble[0]
        self.planner = self.task.make_planner(self.model if len(self.ensemble) == 1 else self.ensemble, self.seed)
        self.planner.learn(model_view(self.data, self.model.encoding))

    def train(self, steps: int | None = None) -> None:
        """(Re)train the world model on the data set; from the current weights when there are any."""
        train_cfg = self.world_model_config.train
        if steps is not None:
            train_cfg = dataclasses.replace(train_cfg, steps=steps, seed=train_cfg.seed + self.trainings,
                                            warmup_steps=min(train_cfg.warmup_steps, steps // 10),
                                            lr=self.config.retrain_lr or train_cfg.lr)
        if self.run_dir is None:
            self.run_dir = Path(tempfile.mkdtemp(prefix="diffaif-aif-"))
        # the first training fixes the encoding (and its data statistics); retraining keeps it
        encoding = self.model.encoding if self.model is not None else self.task.encoding(self.data)
        models = [train_world_model(model_view(self.data, encoding), encoding, self.world_model_config.model,
                                    dataclasses.replace(train_cfg, seed=train_cfg.seed + 1000 * member),
                                    self.run_dir / (f"train{self.trainings}" + (f"_member{member}" if member else "")),
                                    init_model=self.ensemble[member] if member < len(self.ensemble) else None,
                                    progress=self.config.progress).to(self.config.device)
                  .set_runtime(self.config.precision, self.config.compile)
                  for member in range(self.config.ensemble)]
        self.trainings += 1
        self._set_model(models)
        self._since_retrain = 0
        self._surprise.clear()

    def warm_up(self, env: gym.Env, steps: int, seed: int) -> int:
        """Algorithm 1's initialisation: ``steps`` interactions of the warm-up policy, then training.

        "random": each random action is held for 1..``warmup_hold`` steps (uniform; the durations come
        from their own generator: the reset seeds and the sequence of drawn actions do not depend on it,
        and with 1 the warm-up is exactly the per-step random policy's). "novelty": each action is
        ``DirectedExploration``'s, learnt from the transitions of the warm-up so far.

        With a pretrained model no interaction is made; the interactions of its training data are
        returned instead, so the harness charges them to this agent.
        """
        if self.config.pretrained:
            return self.data.n_interactions
        rng, durations = np.random.default_rng(seed), np.random.default_rng([seed, 1])
        self.action_space.seed(int(rng.integers(2**31)))
        explorer = self._explorer(seed)
        used = 0
        while used < steps:
            obs, info = env.reset(seed=int(rng.integers(2**31)))
            self._record_start(info, obs)
            flat = self.task.observation(obs)
            if explorer:
                explorer.start(flat)
            done, held = False, 0
            while not done and used < steps:
                if explorer:
                    action = explorer.act(flat)
                else:
                    if held == 0:
                        action, held = self.action_space.sample(), int(durations.integers(1, self.config.warmup_hold + 1))
                    held -= 1
                obs, reward, terminated, truncated, info = env.step(action)
                used += env_steps(info)
                # an episode cut by the budget is recorded as truncated: no absorbing padding after it
                done = terminated or truncated or used >= steps
                reached = self.task.observation(obs)
                if explorer:
                    explorer.record(flat, action, reached, terminated)
                self.data.append_transition(action, reward, terminated, done and not terminated,
                                            hidden_state(info), reached)
                flat = reached
        if self.model is None and used:
            self.train()
        return used

    @property
    def warmup_policy(self) -> str:
        """How the warm-up collects data: the config's ``warmup_policy``, else the task family's."""
        return self.config.warmup_policy or self.task.warmup_policy

    def _explorer(self, seed: int) -> DirectedExploration | None:
        """The warm-up's ``DirectedExploration`` when its policy is "novelty", else None."""
        if self.warmup_policy == "random":
            return None
        if not isinstance(self.action_space, gym.spaces.Discrete):
            raise ValueError(f"warmup_policy 'novelty' needs Discrete actions, got {self.action_space}")
        return DirectedExploration(int(self.action_space.n), seed=seed)

    def _record_start(self, info: dict, observation: Any) -> None:
        state, observation = hidden_state(info), self.task.observation(observation)
        if self.data is None:
            self.data = EpisodeData.empty(state, observation, self.action_space.sample())
        self.data.start_episode(state, observation)

    # ---- acting ------------------------------------------------------------------------------
    def reset(self, observation: Any, info: dict | None = None) -> None:
        if self.planner is None:
            raise RuntimeError("the world model is not trained: give the agent a warm-up budget or a pretrained model")
        self._observations = [self._seen(self.task.observation(observation), float("nan"))]
        self._actions = []
        self._recording = info is not None
        if self._recording:  # grow the data set with the evaluated episodes (Algorithm 1, line 11)
            self._record_start(info, observation)

    def act(self, observation: Any) -> int:
        start = time.perf_counter()
        plan = self.planner.plan(self._observations, self._actions)
        self._last_ms = 1000 * (time.perf_counter() - start)
        self._last_plan = plan
        return plan.action

    def observe(self, action: Any, reward: float, next_observation: Any, terminated: bool, truncated: bool,
                info: dict | None = None) -> None:
        flat = self.task.observation(next_observation)
        seen = self._seen(flat, reward)
        if self._last_plan is not None:
            self._surprise.append(self._last_plan.surprise(action, seen))
        self._observations.append(seen)
        self._actions.append(action)
        if self._recording:
            self.data.append_transition(action, reward, terminated, truncated, hidden_state(info or {}), flat)
        self._since_retrain += 1
        done = terminated or truncated
        if done:
            self._episodes_done += 1
        if self._retrain_due(done):
            self.train(self.config.retrain_steps)   # also refits the planner on the grown data set
        elif done and self._recording:
            self.planner.learn(model_view(self.data, self.model.encoding))

    def _seen(self, flat: Any, received: float) -> Any:
        """A flattened observation (``task.observation``) as the world model sees it: with the reward
        received on arriving at it where the encoding observes rewards (NaN: none yet)."""
        return self.model.encoding.model_observations([flat], [received])[0]

    def _retrain_due(self, episode_done: bool) -> bool:
        """Whether the configured retraining rule fires after this step."""
        rule, every = self.config.retrain, self.config.retrain_every
        if rule == "episodes":
            return episode_done and self._episodes_done % every == 0
        if rule == "steps":
            return self._since_retrain >= every
        return (rule == "surprise" and len(self._surprise) >= every
                and bool(np.mean(self._surprise[-every:]) > self.config.surprise_threshold))

    def step_log(self) -> dict[str, Any]:
        """Per-step log: the planner's record of the decision (``log()`` of its plan) and its time."""
        if self._last_plan is None:
            return {}
        return {**self._last_plan.log(), "decision_ms": self._last_ms}

    # ---- the public API: learn, save, load, from_config -------------------------------------
    def learn(self, total_env_steps: int, warmup_steps: int | None = None) -> "DiffusionAIFAgent":
        """Algorithm 1 on the agent's env for ``total_env_steps`` interactions: a random warm-up of
        ``warmup_steps`` (default half the budget) and training, then acting (planning) with the data
        set growing and the world model retrained by the configured rule. A trained agent (a second
        call, or a pretrained model) spends the whole budget acting. → the agent, as in SB3."""
        if total_env_steps < 1:
            raise ValueError(f"total_env_steps must be >= 1, got {total_env_steps}")
        seeds = np.random.default_rng([self.seed, self.trainings, self._episodes_done])
        used = 0
        if self.planner is None:
            warmup = total_env_steps // 2 if warmup_steps is None else warmup_steps
            if not 1 <= warmup <= total_env_steps:
                raise ValueError(f"warmup_steps must be in [1, total_env_steps={total_env_steps}], got {warmup}")
            used = self.warm_up(self.env, warmup, seed=int(seeds.integers(2**31)))
        while used < total_env_steps:
            used += self._learning_episode(total_env_steps - used, int(seeds.integers(2**31)))
        return self

    def _learning_episode(self, budget: int, reset_seed: int) -> int:
        """One episode of acting and learning on the agent's env, cut (truncated) after ``budget``
        interactions; → the interactions used."""
        obs, info = self.env.reset(seed=reset_seed)
        self.reset(obs, info)
        used, done = 0, False
        while not done:
            action = self.act(obs)
            obs, reward, terminated, truncated, info = self.env.step(action)
            used += env_steps(info)
            truncated = truncated or used >= budget
            self.observe(action, reward, obs, terminated, truncated, info)
            done = terminated or truncated
        return used

    def save(self, path: str | Path) -> None:
        """Write the agent into the folder ``path``: its config, the world model config, the world
        model(s) with their encoding, the data set, the planner's generator and caches, and the
        counters of the retraining rule; ``load`` restores the same decisions."""
        if self.model is None:
            raise RuntimeError("the agent has no world model to save: call learn first")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_config(dataclasses.replace(self.config, pretrained=None, run_dir=None), path / AGENT_CONFIG_FILE)
        save_config(self.world_model_config, path / WORLD_MODEL_CONFIG_FILE)
        for member, model in enumerate(self.ensemble):
            model.save(path / f"model{member}")
        save_episodes(self.data, path / EPISODES_FILE)
        state = {"generator": self.planner.generator.get_state(),
                 **{name: getattr(self.planner, name) for name in PLANNER_CACHES if hasattr(self.planner, name)}}
        torch.save(state, path / PLANNER_STATE_FILE)
        atomic_write_text(path / AGENT_STATE_FILE, json.dumps({
            "seed": self.seed, "rng": self.rng.bit_generator.state, "trainings": self.trainings,
            "episodes_done": self._episodes_done, "since_retrain": self._since_retrain,
            "surprise": self._surprise, "ensemble": len(self.ensemble)}, indent=2))

    @classmethod
    def load(cls, path: str | Path, env: gym.Env, device: str | None = None) -> "DiffusionAIFAgent":
        """The agent ``save`` wrote into ``path``, acting on ``env`` (``device``: default the saved one)."""
        path = Path(path)
        if not (path / AGENT_STATE_FILE).is_file():
            raise FileNotFoundError(f"{path} holds no saved agent ({AGENT_STATE_FILE} is missing)")
        state = json.loads((path / AGENT_STATE_FILE).read_text())
        config = build_config(AIFConfig, [path / AGENT_CONFIG_FILE], [f"device={device}"] if device else [])
        agent = cls(env, state["seed"], config)
        agent.world_model_config = build_config(WorldModelConfig, [path / WORLD_MODEL_CONFIG_FILE])
        agent.rng.bit_generator.state = state["rng"]
        agent.trainings, agent._episodes_done = state["trainings"], state["episodes_done"]
        agent._since_retrain, agent._surprise = state["since_retrain"], list(state["surprise"])
        agent.data = load_episodes(path / EPISODES_FILE)
        agent._set_model([WorldModel.load(path / f"model{member}", config.device)
                          .set_runtime(config.precision, config.compile) for member in range(state["ensemble"])])
        planner_state = torch.load(path / PLANNER_STATE_FILE, weights_only=True)
        agent.planner.generator.set_state(planner_state.pop("generator"))
        for name, value in planner_state.items():
            setattr(agent.planner, name, value)
        return agent

    @classmethod
    def from_config(cls, path_or_preset: str | Path, env: gym.Env, seed: int | None = None,
                    **overrides: Any) -> "DiffusionAIFAgent":
        """An agent configured by a YAML file of AIFConfig keys, or by the ``agent.aif`` section of an
        experiment preset or file (e.g. ``"grid4x4"``; its env options are not applied: ``env`` is
        yours). ``overrides``: AIFConfig keys over it."""
        layer = read_yaml(preset_or_file("experiments", path_or_preset))
        layer = layer.get("compare", layer)  # a suite preset keeps its compare settings there
        if "agent" in layer or "env" in layer:
            layer = (layer.get("agent") or {}).get("aif") or {}
        return cls(env, seed, build_config(AIFConfig, [layer, overrides]))
