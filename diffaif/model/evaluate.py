"""How well the world model predicts the true environment, given the true actions.

On held-out random-policy episodes, windows are built as the planner builds them (``known_window``:
observations and actions up to the present step, the true next actions as the policy); the model's
samples are compared with what really happened and, in grid tasks, with the exact Bayes-filter
prediction (``evaluate_world_model``); continuous observations (control tasks) get per-dimension
errors against the truth and against predicting no change (``evaluate_continuous_world_model``).
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch

from diffaif.data.episodes import collect_episodes, model_view
from diffaif.data.exact_filter import filter_beliefs, predict_observations
from diffaif.model.world_model import WorldModel, known_window


def most_frequent(samples: np.ndarray, n_values: int) -> np.ndarray:
    """Mode over the sample axis: (B, n, ...) ints -> (B, ...)."""
    return histogram(samples, n_values).argmax(axis=-1)


def histogram(samples: np.ndarray, n_values: int) -> np.ndarray:
    """Empirical distribution over the sample axis: (B, n, ...) ints -> (B, ..., n_values)."""
    counts = (samples[..., None] == np.arange(n_values)).sum(axis=1)
    return counts / samples.shape[1]


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``TV(p, q) = ½ Σ_k |p_k - q_k|`` over the last axis."""
    return 0.5 * np.abs(p - q).sum(axis=-1)


def _planning_windows(data: Any, context: int, horizon: int, per_episode: int, n_actions: int | None,
                      rng: np.random.Generator, absorbing: Callable[[np.ndarray], np.ndarray] = lambda o: o
                      ) -> list[dict]:
    """Present steps t of each episode with their history, true next actions and true future.

    After a terminated episode the future is the absorbing final step, as ``absorbing`` shows it (an
    encoding's ``without_reward``: nothing more is paid), with actions drawn uniformly from
    ``n_actions``; an unterminated episode, or any episode when ``n_actions`` is None (continuous
    actions), only offers t with t + horizon within it.
    """
    items = []
    for e, ((a, b), done) in enumerate(zip(data.episode_bounds(), data.episode_terminated())):
        n = b - a
        last = n - 1 if done and n_actions is not None else n - 1 - horizon
        if last < 0:
            continue
        for t in rng.choice(last + 1, size=min(per_episode, last + 1), replace=False):
            rows = np.minimum(np.arange(t, t + horizon + 1), n - 1) + a
            actions = data.actions[rows[:-1]].copy()
            beyond = np.arange(t, t + horizon) >= n - 1
            if beyond.any():
                actions[beyond] = rng.integers(0, n_actions, size=int(beyond.sum()))
            future = data.observations[rows[1:]]
            if beyond.any():
                future = np.concatenate([future[~beyond], absorbing(future[beyond])])
            first = max(0, t - context)
            items.append(dict(episode=e, t=int(t), obs_history=data.observations[a + first:a + t + 1],
                              action_history=data.actions[a + first:a + t], policy=actions,
                              future_obs=future, states=data.states[rows]))
    return items


def window_beliefs(item: dict, prior_start: np.ndarray, prior_window: np.ndarray, P: np.ndarray,
                   O: np.ndarray, context: int) -> np.ndarray:
    """The exact belief about s_t given only what the model's window shows: (n_states,).

    The window holds ``o_{t-k+1..t}`` and ``a_{t-k+1..t-1}`` (k <= context + 1). If k < context + 1 the
    window shows absent tokens before the episode start, so the first observation is o_0 and the prior
    is ``prior_start``; otherwise the window could start anywhere in an episode and the prior of its first
    state is ``prior_window`` (the state occupancy of the data). Then the Bayes filter runs over the window.
    """
    observations, actions = item["obs_history"], item["action_history"]
    prior = prior_start if len(observations) < context + 1 else prior_window
    return filter_beliefs(prior, P, O, observations, actions)[-1]


def _sample_windows(model: WorldModel, items: list[dict], context: int, horizon: int, n_samples: int,
                    steps: int | None, mode: str | None, seed: int, batch_windows: int,
                    length: int | None = None) -> tuple:
    """The model's samples of every window in ``items``, ``batch_windows`` windows per inpaint call.

    Windows are ``length`` tokens (default the model's; the planner crops them to context + 1 + horizon).

    Returns decoded observations (W, n, H, ...) of steps t+1..t+H, states (W, n, H + 1, ...) of steps
    t..t+H (index 0 = present; None when the encoding has no state part) and the facts of the run every
    report carries: ``n_windows``, ``context``, ``horizon``, ``n_samples``, ``mode``, ``steps``,
    ``seconds_per_call``.
    """
    generator = torch.Generator().manual_seed(seed)
    obs_samples, state_samples, seconds = [], [], []
    for start in range(0, len(items), batch_windows):
        chunk = items[start:start + batch_windows]
        pairs = [known_window(model.encoding, length or model.length, context, item["obs_history"][None],
                              item["action_history"][None], item["policy"][None]) for item in chunk]
        known = torch.cat([k for k, _ in pairs])
        mask = torch.cat([m for _, m in pairs])
        began = time.perf_counter()
        samples = model.inpaint(known, mask, n_samples, steps=steps, mode=mode, generator=generator)
        seconds.append(time.perf_counter() - began)
        offset = (np.stack([model.encoding.window_offset(item["obs_history"]) for item in chunk])[:, None]
                  if model.encoding.anchored else None)                            # (W, 1, 1, d_o)
        decoded = model.encoding.decode(samples[:, :, context:context + horizon + 1], offset)
        obs_samples.append(decoded["obs"][:, :, 1:])
        state_samples.append(decoded.get("state"))
    facts = {"n_windows": len(items), "context": context, "horizon": horizon, "n_samples": n_samples,
             "mode": mode or model.config.mode, "steps": steps or model.config.steps,
             "seconds_per_call": float(np.mean(seconds))}
    states = np.concatenate(state_samples) if model.encoding.has_state else None
    return np.concatenate(obs_samples), states, facts


def _window_context(model: WorldModel, horizon: int, context: int | None) -> int:
    """``context`` (default ``model.length - 1 - horizon``), checked to fit the window with the horizon."""
    context = model.length - 1 - horizon if context is None else context
    if context < 0 or context + horizon + 1 > model.length:
        raise ValueError(f"context {context} + horizon {horizon} + 1 must fit the window length {model.length}")
    return context


def _held_out_windows(model: WorldModel, env: Any, n_episodes: int, horizon: int, context: int | None, seed: int,
                      per_episode: int, n_actions: int | None) -> tuple[int, list[dict]]:
    """``n_episodes`` random-policy episodes reset from ``seed``, as the model observes them (``model_view``:
    with the reward received where the encoding observes it), and their ``_planning_windows``
    → (the context, checked against the window, the windows)."""
    context = _window_context(model, horizon, context)
    data = model_view(collect_episodes(env, n_episodes, seed=seed), model.encoding)
    items = _planning_windows(data, context, horizon, per_episode, n_actions, np.random.default_rng(seed),
                              model.encoding.without_reward)
    if not items:
        raise ValueError(f"no episode of the {n_episodes} collected is longer than the horizon {horizon}")
    return context, items


def evaluate_world_model(model: WorldModel, env: Any, n_episodes: int = 50, horizon: int = 5, n_samples: int = 16,
                         steps: int | None = None, mode: str | None = None, seed: int = 10_000,
                         context: int | None = None, per_episode: int = 4, batch_windows: int = 256,
                         state_prior: np.ndarray | None = None) -> dict:
    """k-step prediction accuracy (k = 1..horizon) given the true actions, and calibration against the exact filter.

    The model sees ``context`` past steps, so its reference is the exact Bayes filter *given the same
    window* (``window_beliefs``): prior = the start cell when the window shows the episode start, else
    ``state_prior`` (default: the state occupancy of the evaluation episodes, all rows, which is what a
    window start looks like in random-policy training data), then the window's observations and actions.
    The filter over the whole episode history knows more than the window can show; it is reported too
    (``*_full_history``) as the stricter yardstick.

    Returns a dict with lists over k: ``obs_accuracy`` / ``state_accuracy`` (the most frequent sampled
    o_{t+k} / s_{t+k} equals the true one), ``obs_accuracy_bayes`` (the mode of the exact window
    predictive equals the true o_{t+k}: the best any model can score in a stochastic task), ``obs_tvd``
    (mean total variation between the sample histogram of o_{t+k} and the exact predictive
    ``b_t P[:, a_t] ··· O`` with the window belief b_t),
    ``obs_tvd_floor`` (the same for a histogram of ``n_samples`` draws from that exact predictive itself:
    what a perfect model scores with this many samples), ``obs_tvd_full_history`` (against the predictive
    of the whole-history belief); and scalars ``belief_accuracy`` (argmax of the sampled s_t histogram =
    argmax of the window belief), ``belief_accuracy_ceiling`` (the same for ``n_samples`` draws from the
    window belief: a perfect model's score, below 1 where the belief is flat), ``belief_accuracy_full_history``,
    ``belief_tvd`` / ``belief_tvd_floor`` (total variation of the s_t histogram, resp. of exact draws, to
    the window belief), ``present_state_accuracy`` (most frequent sampled s_t = true s_t), ``n_windows``,
    ``seconds_per_call`` (per inpaint call of ``batch_windows`` windows). ``context`` defaults to
    ``model.length - 1 - horizon``.
    """
    grid = env.unwrapped
    if not hasattr(grid, "transition_matrix"):
        raise ValueError(f"evaluate_world_model needs a grid task with an exact transition model, not {env}; "
                         "continuous observations: evaluate_continuous_world_model")
    context = _window_context(model, horizon, context)
    rng = np.random.default_rng(seed)
    data = collect_episodes(env, n_episodes, seed=seed)
    items = _planning_windows(data, context, horizon, per_episode, int(grid.action_space.n), rng)
    P, O = grid.transition_matrix(), grid.observation_matrix()
    n_cells = grid.n_cells
    prior = np.eye(n_cells)[grid.start]
    if state_prior is None:
        state_prior = np.bincount(data.states, minlength=n_cells) / data.n_steps
    beliefs = {e: filter_beliefs(prior, P, O, ep["observations"], ep["actions"])
               for e, ep in ((e, data.episode(e)) for e in {item["episode"] for item in items})}
    obs_samples, state_samples, facts = _sample_windows(model, items, context, horizon, n_samples, steps, mode,
                                                        seed, batch_windows)
    true_obs = np.stack([item["future_obs"] for item in items])
    true_states = np.stack([item["states"] for item in items])
    belief_full = np.stack([beliefs[item["episode"]][item["t"]] for item in items])
    belief_now = np.stack([window_beliefs(item, prior, state_prior, P, O, context) for item in items])
    exact = np.stack([predict_observations(b, P, O, item["policy"]) for b, item in zip(belief_now, items)])
    exact_full = np.stack([predict_observations(b, P, O, item["policy"]) for b, item in zip(belief_full, items)])

    def draws(p: np.ndarray) -> int:
        return rng.choice(n_cells, p=p / p.sum())

    floor_draws = np.stack([[[draws(p_k) for p_k in window] for _ in range(n_samples)]
                            for window in exact])  # (W, n, H)
    belief_draws = np.stack([[draws(b) for _ in range(n_samples)] for b in belief_now])  # (W, n)
    state_hist_now = histogram(state_samples[:, :, 0], n_cells)
    obs_hist = histogram(obs_samples, n_cells)
    return {
        "obs_accuracy": (most_frequent(obs_samples, n_cells) == true_obs).mean(axis=0).tolist(),
        "state_accuracy": (most_frequent(state_samples[:, :, 1:], n_cells) == true_states[:, 1:]).mean(axis=0).tolist(),
        "obs_accuracy_bayes": (exact.argmax(-1) == true_obs).mean(axis=0).tolist(),
        "obs_tvd": total_variation(obs_hist, exact).mean(axis=0).tolist(),
        "obs_tvd_floor": total_variation(histogram(floor_draws, n_cells), exact).mean(axis=0).tolist(),
        "obs_tvd_full_history": total_variation(obs_hist, exact_full).mean(axis=0).tolist(),
        "belief_accuracy": float((state_hist_now.argmax(-1) == belief_now.argmax(-1)).mean()),
        "belief_accuracy_ceiling": float((most_frequent(belief_draws, n_cells) == belief_now.argmax(-1)).mean()),
        "belief_accuracy_full_history": float((state_hist_now.argmax(-1) == belief_full.argmax(-1)).mean()),
        "belief_tvd": float(total_variation(state_hist_now, belief_now).mean()),
        "belief_tvd_floor": float(total_variation(histogram(belief_draws, n_cells), belief_now).mean()),
        "present_state_accuracy": float((state_hist_now.argmax(-1) == true_states[:, 0]).mean()),
        **facts,
    }


def evaluate_continuous_world_model(model: WorldModel, env: Any, n_episodes: int = 50, horizon: int = 5,
                                    n_samples: int = 16, steps: int | None = None, mode: str | None = None,
                                    seed: int = 10_000, context: int | None = None, per_episode: int = 4,
                                    batch_windows: int = 256) -> dict:
    """k-step prediction error (k = 1..horizon) of a world model with continuous observations, given the true actions.

    Windows are built as the planner builds them from held-out random-policy episodes (a window whose
    present step t < ``context`` shows the episode start, as the planner's first steps do). With ô_{t+k} the mean of
    the ``n_samples`` sampled o_{t+k} and σ̂_{t+k} their standard deviation, per step k and observation
    dimension j, averaged over the windows (observation units):

    - ``obs_abs_error[k][j]`` = |ô_{t+k,j} − o_{t+k,j}|;
    - ``obs_abs_error_persistence[k][j]`` = |o_{t,j} − o_{t+k,j}|, the error of predicting no change:
      the yardstick a useful model must beat;
    - ``obs_spread[k][j]`` = σ̂_{t+k,j}: a calibrated model's spread is of the size of its error;

    and ``n_windows``, ``context``, ``horizon``, ``n_samples``, ``mode``, ``steps``, ``seconds_per_call``.
    ``context`` defaults to ``model.length - 1 - horizon``.
    """
    if model.encoding.parts["obs"].kind != "continuous":
        raise ValueError("evaluate_continuous_world_model needs continuous observations; "
                         "grid tasks: evaluate_world_model")
    context, items = _held_out_windows(model, env, n_episodes, horizon, context, seed, per_episode, None)
    obs_samples, _, facts = _sample_windows(model, items, context, horizon, n_samples, steps, mode, seed,
                                            batch_windows)  # (W, n, H, d)
    true_obs = np.stack([item["future_obs"] for item in items])          # (W, H, d)
    present = np.stack([item["obs_history"][-1] for item in items])      # (W, d)
    return {
        "obs_abs_error": np.abs(obs_samples.mean(axis=1) - true_obs).mean(axis=0).tolist(),
        "obs_abs_error_persistence": np.abs(present[:, None] - true_obs).mean(axis=0).tolist(),
        "obs_spread": obs_samples.std(axis=1).mean(axis=0).tolist(),
        **facts,
    }


def view_to_world(agent: np.ndarray, view_size: int) -> np.ndarray:
    """World coordinates of every cell of MiniGrid's egocentric view, the inverse of
    ``MiniGridEnv.get_view_coords``: agent (..., 3) int (x, y, direction) -> (..., V*V, 2) int, the
    view flattened row-major (row = view y, column = view x) as ``MiniGridTask`` flattens it."""
    from minigrid.core.constants import DIR_TO_VEC

    vectors = np.asarray(DIR_TO_VEC)[agent[..., 2]]                               # (..., 2) forward
    dx, dy = vectors[..., 0], vectors[..., 1]
    rx, ry = -dy, dx                                                               # right of forward
    half = view_size // 2
    tx = agent[..., 0] + dx * (view_size - 1) - rx * half
    ty = agent[..., 1] + dy * (view_size - 1) - ry * half
    vy, vx = np.divmod(np.arange(view_size * view_size), view_size)
    i = tx[..., None] + vx * rx[..., None] - vy * dx[..., None]
    j = ty[..., None] + vx * ry[..., None] - vy * dy[..., None]
    return np.stack([i, j], axis=-1)


def cells_seen_before(agent_before: np.ndarray, view_before: np.ndarray, agent_after: np.ndarray,
                      view_after: np.ndarray, view_size: int) -> np.ndarray:
    """Which cells of the later view show a world cell the earlier view also showed (neither "unseen"),
    except the agent's own cell (it shows what the agent carries): what the earlier view and the
    action determine. agents (..., 3), views (..., V*V) cell codes -> (..., V*V) bool."""
    before = view_to_world(agent_before, view_size)                                # (..., V*V, 2)
    after = view_to_world(agent_after, view_size)
    unseen = 0  # CELL_NAMES.index("unseen")
    same = (after[..., :, None, :] == before[..., None, :, :]).all(-1)            # (..., V*V, V*V)
    seen_before = (same & (view_before != unseen)[..., None, :]).any(-1)
    own = np.zeros(view_size * view_size, dtype=bool)
    own[(view_size - 1) * view_size + view_size // 2] = True
    return seen_before & (view_after != unseen) & ~own


def evaluate_categorical_world_model(model: WorldModel, env: Any, n_episodes: int = 50, horizon: int = 5,
                                     n_samples: int = 16, steps: int | None = None, mode: str | None = None,
                                     seed: int = 10_000, context: int | None = None, per_episode: int = 4,
                                     batch_windows: int = 256, crop: bool = True) -> dict:
    """k-step prediction accuracy (k = 1..horizon) of a world model with categorical observations
    (one value or a vector of them, e.g. a MiniGrid state or view), given the true actions, on
    held-out random-policy episodes.

    Windows are built as the planner builds them (``known_window``), cropped to context + 1 + horizon
    tokens when ``crop`` (the planner's ``crop_window``). Per step k, averaged over the windows:

    - ``obs_accuracy[k]``: the most frequent sampled observation vector equals the true o_{t+k};
    - ``obs_accuracy_sample[k]``: the share of single samples whose whole vector is right;
    - ``obs_entry_accuracy[k]``: the share of entries right, over single samples;
    - ``obs_accuracy_persistence[k]``: o_t equals o_{t+k} (predicting no change: the yardstick);

    for a MiniGrid view (``MiniGridTask`` with ``obs_mode="view"``), also ``view_cell_accuracy_seen``:
    the share of single samples' view cells right at k = 1 among the cells the present view already
    showed (``cells_seen_before``), with ``view_cells_seen`` their number; and the facts of
    ``_sample_windows``. ``context`` defaults to ``model.length - 1 - horizon``.
    """
    if model.encoding.parts["obs"].kind != "categorical":
        raise ValueError("evaluate_categorical_world_model needs categorical observations; "
                         "continuous ones: evaluate_continuous_world_model")
    context, items = _held_out_windows(model, env, n_episodes, horizon, context, seed, per_episode,
                                       int(env.action_space.n))
    obs_samples, _, facts = _sample_windows(model, items, context, horizon, n_samples, steps, mode, seed,
                                            batch_windows, context + 1 + horizon if crop else None)
    true_obs = np.stack([item["future_obs"] for item in items])                    # (W, H[, F])
    present = np.stack([item["obs_history"][-1] for item in items])
    obs_samples = obs_samples.reshape(*obs_samples.shape[:3], -1)                  # (W, n, H, F)
    true_obs = true_obs.reshape(*true_obs.shape[:2], -1)                           # (W, H, F)
    right = (obs_samples == true_obs[:, None]).all(-1)                             # (W, n, H)
    # the mode over samples of whole vectors: the sample that agrees with the most others
    agree = (obs_samples[:, :, None] == obs_samples[:, None]).all(-1).sum(2)       # (W, n, H)
    modal = np.take_along_axis(right, agree.argmax(1)[:, None], axis=1)[:, 0]      # (W, H)
    result = {
        "obs_accuracy": modal.mean(axis=0).tolist(),
        "obs_accuracy_sample": right.mean(axis=(0, 1)).tolist(),
        "obs_entry_accuracy": (obs_samples == true_obs[:, None]).mean(axis=(0, 1, 3)).tolist(),
        "obs_accuracy_persistence": (present.reshape(len(items), 1, -1) == true_obs).all(-1).mean(axis=0).tolist(),
        "crop": crop,
        **facts,
    }
    task = _minigrid_task(env)
    if task is not None and task.obs_mode == "view":
        cells = task.view_size ** 2
        states = np.stack([item["states"] for item in items])                      # (W, H + 1, S)
        seen = cells_seen_before(states[:, 0, :3], present[:, :cells], states[:, 1, :3], true_obs[:, 0, :cells],
                                 task.view_size)                                   # (W, V*V)
        hits = (obs_samples[:, :, 0, :cells] == true_obs[:, None, 0, :cells]) & seen[:, None]
        result["view_cell_accuracy_seen"] = float(hits.sum() / max(1, seen.sum() * obs_samples.shape[1]))
        result["view_cells_seen"] = int(seen.sum())
    return result


def _minigrid_task(env: Any) -> Any:
    """The ``MiniGridTask`` wrapper inside ``env``, or None."""
    from diffaif.envs.minigrid_task import MiniGridTask

    while not isinstance(env, MiniGridTask):
        if not hasattr(env, "env"):
            return None
        env = env.env
    return env


def evaluate_any_world_model(model: WorldModel, env: Any, **kwargs: Any) -> dict:
    """The evaluation that fits the task: ``evaluate_world_model`` for grid worlds (exact filter),
    ``evaluate_continuous_world_model`` for continuous observations, ``evaluate_categorical_world_model``
    for any other categorical ones (MiniGrid, discrete gymnasium envs); keyword arguments pass through."""
    if hasattr(env.unwrapped, "transition_matrix"):
        return evaluate_world_model(model, env, **kwargs)
    if model.encoding.parts["obs"].kind == "continuous":
        return evaluate_continuous_world_model(model, env, **kwargs)
    return evaluate_categorical_world_model(model, env, **kwargs)
