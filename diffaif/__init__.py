"""diffaif: an active-inference agent whose world model is a diffusion model.

The public API, in Stable-Baselines3's conventions::

    from diffaif import AIFAgent, make_env
    env = make_env("grid4x4")
    agent = AIFAgent(env, seed=0).learn(total_env_steps=2000)

Names load on first use (module ``__getattr__``), so ``import diffaif`` and ``diffaif --help`` do not
import torch, diffusers or Stable-Baselines3.
"""
from __future__ import annotations

from diffaif.lazy import lazy_attributes

# public name → (module, attribute)
_EXPORTS = {
    "AIFAgent": ("diffaif.agents.aif", "DiffusionAIFAgent"),
    "AIFConfig": ("diffaif.agents.aif", "AIFConfig"),
    "make_agent": ("diffaif.agents", "make_agent"),
    "make_env": ("diffaif.envs", "make_env"),
    "WorldModel": ("diffaif.model.world_model", "WorldModel"),
    "collect_episodes": ("diffaif.data.episodes", "collect_episodes"),
    "train_world_model": ("diffaif.model.train", "train_world_model"),
    "task_encoding": ("diffaif.tasks", "task_encoding"),
    "compare": ("diffaif.experiments.compare", "compare"),
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_attributes(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
