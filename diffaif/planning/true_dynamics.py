"""The true dynamics as a sampler: what the planner gets when its world model is the simulator itself.

``TrueDynamics`` offers the part of ``WorldModel``'s interface the planners use (``encoding``,
``length``, ``inpaint``): each candidate's actions are read from its known window and played on a copy
of the live env (``ControlTask.simulate``), and the future observations (and hidden states, equal to
them here) are written into the window. The same planner then scores these rollouts, so planning on
the true dynamics is one configuration of the one planner, a reference no world model can beat.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from einops import repeat

from diffaif.data.encoding import TaskEncoding


class TrueDynamics:
    """Rollouts of ``env`` (a ``ControlTask``: ``simulate(actions)`` from its current state, on a copy).

    encoding: the token layout, without anchored dimensions or a reward entry (the simulator gives
    neither offsets nor rewards); context: the planner's past steps (the present is window step c).
    The dynamics are deterministic: the n samples of a candidate are equal.
    """

    def __init__(self, env: Any, encoding: TaskEncoding, length: int, context: int):
        if not hasattr(env, "simulate"):
            raise ValueError(f"true-dynamics planning needs an env with simulate(actions) (ControlTask), got "
                             f"{type(env).__name__}")
        if encoding.anchored or encoding.parts["obs"].reward_values is not None:
            raise ValueError("true-dynamics planning needs an encoding without anchored dimensions or a reward entry")
        self.env, self.encoding, self.length, self.context = env, encoding, length, context

    def inpaint(self, known: torch.Tensor, mask: torch.Tensor, n_samples: int, *args: Any, **kwargs: Any) -> torch.Tensor:
        """known (K, T, D) windows with the actions of steps c .. T−2 known → (K, n, T, D) windows with
        the simulated observations (and states) of steps c+1 .. T−1 written in."""
        c = self.context
        actions = self.encoding.decode_part(known[:, c:-1].numpy(), "action")        # (K, h) or (K, h, d_a)
        future = np.stack([self.env.simulate(sequence) for sequence in actions])     # (K, h, d_o)
        windows = known.clone()
        for part in ("state", "obs"):
            if part in self.encoding.parts:
                windows[:, c + 1:, self.encoding.slice(part)] = torch.as_tensor(self.encoding.encode_part(part, future))
        return repeat(windows, "k t d -> k n t d", n=n_samples)
