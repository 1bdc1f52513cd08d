"""Expected free energy over a belief map: plans from MiniGrid's egocentric view.

The generative model has three parts. The map: a masked discrete diffusion model (``MapInpainter``)
gives each unknown cell's marginal ``q(map_i)`` and joint completions of the unknown cells. The
pose: dead-reckoned (``BeliefMap``). The local rules: what ``forward``, ``toggle`` and ``pickup`` do
given the code of the cell in front and what is carried (``LocalRules``: Dirichlet counts of the
outcomes seen, so the agent learns that doors open, keys are carried, the goal pays and lava ends
the episode; nothing of this is written in).

A policy is "walk to a pose (through known cells), look, then go on to the reward". Its expected free
energy, in nats, is

    G = λ · steps to the pose
        + E_k[min_c (λ · steps from the pose to c on completion k − log q(reward at c))]     (risk)
        − β · I(map; view at the pose) − ν · novelty of the local rule tried there,

with ``λ`` the preference precision (the cost of a step without reward: the preference is over the
reward observed); ``reward_surprise`` the hypotheses of where the reward is (a cell seen to hold a code
that paid, or one never stepped on, or an unseen cell with its surprise under the model); the epistemic term
``revealed_information_gain`` (views are noiseless, so it is the entropy of the unseen cells the
view would reveal, occlusion included); and the parameter term ``dirichlet_novelty`` of the untried
rules. Steps on each completion are exact shortest paths over (carried object, direction, cell)
under the learned rules (``shortest_costs``); the walk to the pose and the choice of the pose are one
more shortest-path problem, whose stopping cost at every pose is the rest of G. The agent samples
its action from ``softmax(−γ Q)``, Q the G of each first action.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from diffaif.envs.minigrid_task import N_CELL_CODES
from diffaif.model.map_model import MapInpainter
from diffaif.planning.belief_map import EMPTY, OPAQUE_CODES, STEP, UNKNOWN, BeliefMap, view_offsets, view_visibility
from diffaif.planning.efe import categorical_entropy, dirichlet_novelty, policy_posterior, revealed_information_gain

# What ``forward`` did: moved on, stayed, ended the episode with a reward, or ended it without one.
FORWARD_OUTCOMES: tuple[str, ...] = ("pass", "block", "goal", "trap")
RULE_ACTIONS: tuple[str, ...] = ("forward", "toggle", "pickup")


class LocalRules:
    """Counts of what an action did, keyed by (action name, code in front, code carried).

    ``forward`` outcomes are ``FORWARD_OUTCOMES``; ``toggle`` and ``pickup`` outcomes are the pair
    (code in front after, code carried after). Queries return the most frequent outcome, falling back
    to the counts pooled over what is carried when this combination was never tried.
    """

    def __init__(self):
        self.counts: dict[tuple[str, int, int], Counter] = defaultdict(Counter)
        self.pooled: dict[tuple[str, int], Counter] = defaultdict(Counter)

    def record(self, action: str, front: int, carried: int, outcome) -> None:
        if front == UNKNOWN:
            return
        if action == "forward" and outcome not in FORWARD_OUTCOMES:
            raise ValueError(f"a forward outcome is one of {FORWARD_OUTCOMES}, got {outcome!r}")
        self.counts[(action, front, carried)][outcome] += 1
        self.pooled[(action, front)][outcome] += 1

    def count(self, action: str, front: int, carried: int) -> int:
        return sum(self.counts.get((action, front, carried), Counter()).values())

    def outcome(self, action: str, front: int, carried: int):
        counts = self.counts.get((action, front, carried)) or self.pooled.get((action, front))
        return counts.most_common(1)[0][0] if counts else None

    def carried_codes(self) -> list[int]:
        """``EMPTY`` (nothing carried) and every code a pickup was seen to put in hand."""
        held = {outcome[1] for (action, _, _), c in self.counts.items() if action == "pickup" for outcome in c}
        return [EMPTY] + sorted(held - {EMPTY})

    def state_dict(self) -> dict:
        return {"counts": [[list(k), [[list(o) if isinstance(o, tuple) else o, n] for o, n in c.items()]]
                           for k, c in self.counts.items()]}

    @classmethod
    def from_state_dict(cls, state: dict) -> "LocalRules":
        rules = cls()
        for (action, front, carried), outcomes in state["counts"]:
            for outcome, n in outcomes:
                for _ in range(n):
                    rules.record(action, front, carried, tuple(outcome) if isinstance(outcome, list) else outcome)
        return rules


@dataclass
class RuleTables:
    """The learned rules as look-up tables over (layer, code); layer ``l`` carries ``carried[l]``.

    enter (L, C): steps to move onto a cell (1; 2 when a toggle opens it first; inf: impassable, a
    trap or unknown); goal (L, C): entering it pays; trap (L, C): entering it ends the episode
    unpaid; pickup (L, C): the layer a pickup facing the cell leads to (−1: none); novelty (L, C, A):
    the novelty of each action's rule facing the cell; reward (C,): p(entering a cell of this code
    pays): 1 where it did, ½ where ``forward`` into it was never tried (any cell type not yet tried
    may be the one that pays), 0 otherwise.
    """

    carried: list[int]
    enter: np.ndarray
    goal: np.ndarray
    trap: np.ndarray
    pickup: np.ndarray
    novelty: np.ndarray
    reward: np.ndarray

    @classmethod
    def build(cls, rules: LocalRules, action_names: Sequence[str]) -> "RuleTables":
        carried = rules.carried_codes()
        shape = (len(carried), N_CELL_CODES)
        enter, goal, trap = np.full(shape, np.inf), np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        pickup = np.full(shape, -1, dtype=np.int64)
        counts = np.zeros((*shape, len(action_names)))
        reward = np.array([0.0 if code == UNKNOWN else 0.5 if rules.outcome("forward", code, EMPTY) is None else 0.0
                           for code in range(N_CELL_CODES)])
        for l, held in enumerate(carried):
            for code in range(N_CELL_CODES):
                if code == UNKNOWN:
                    continue
                forward = rules.outcome("forward", code, held)
                opened = rules.outcome("toggle", code, held)
                trap[l, code] = forward == "trap"
                if forward in ("pass", "goal"):
                    enter[l, code], goal[l, code] = 1.0, forward == "goal"
                elif opened is not None and rules.outcome("forward", opened[0], held) == "pass":
                    enter[l, code] = 2.0
                picked = rules.outcome("pickup", code, held)
                if picked is not None and picked[1] != held and picked[1] in carried:
                    pickup[l, code] = carried.index(picked[1])
                for a, name in enumerate(action_names):
                    counts[l, code, a] = rules.count(name, code, held)
        has_rule = np.array([name in RULE_ACTIONS for name in action_names]) & (np.arange(N_CELL_CODES) != UNKNOWN)[:, None]
        novelty = np.where(has_rule, dirichlet_novelty(torch.from_numpy(counts)).numpy(), 0.0)
        reward[goal.any(0)] = 1.0
        return cls(carried, enter, goal, trap, pickup, novelty, reward)


def _ahead(x: torch.Tensor, fill: float) -> torch.Tensor:
    """For every direction d, the value of the cell one step ahead: (..., H, W) → (..., 4, H, W)."""
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=fill)
    return torch.stack([padded[..., 1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w] for dy, dx in STEP.tolist()], dim=-3)


def _ahead_per_direction(x: torch.Tensor, fill: float) -> torch.Tensor:
    """``x`` (..., 4, H, W) → for every direction d, x[..., d, ·] one step ahead in direction d."""
    h, w = x.shape[-2:]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=fill)
    return torch.stack([padded[..., d, 1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w]
                        for d, (dy, dx) in enumerate(STEP.tolist())], dim=-3)


def shortest_costs(stop: torch.Tensor, enter: torch.Tensor, pickup: torch.Tensor, step: float = 1.0) -> torch.Tensor:
    """Least cost to finish from every (layer, direction, cell), for a step cost ``step``:

        W(l, d, c) = min( stop(l, d, c),  step + W(l, d ± 1, c),
                          step · enter(l, c + dir_d) + W(l, d, c + dir_d),
                          step + W(pickup(l, c + dir_d), d, c) ),

    solved by Bellman relaxation (the costs are positive). stop (K, L, 4, H, W), inf where one cannot
    stop; enter (K, L, H, W) in steps, inf where impassable; pickup (K, L, H, W) long, −1 for none.
    → W (K, L, 4, H, W).
    """
    enter_ahead, pickup_ahead = _ahead(enter, float("inf")), _ahead(pickup, -1)
    layers = pickup.shape[1]
    w = stop.clone()
    for _ in range(4 * stop.shape[-1] * stop.shape[-2] + 1):
        turned = torch.minimum(w.roll(1, dims=2), w.roll(-1, dims=2)) + step
        best = torch.minimum(torch.minimum(w, turned), step * enter_ahead + _ahead_per_direction(w, float("inf")))
        for target in range(layers):
            best = torch.minimum(best, torch.where(pickup_ahead == target, step + w[:, target: target + 1], float("inf")))
        if torch.equal(best, w):
            break
        w = best
    return w


def reward_surprise(marginals: np.ndarray, known: np.ndarray, reward: np.ndarray) -> np.ndarray:
    """Cost in nats of the hypothesis "the reward is in this cell", with ``p(reward | code)`` = ``reward``.

    With ``q(c) = Σ_code q(code at c) · p(reward | code)``: a seen cell costs ``−log q(c)``, an unseen
    one ``−log (q(c) / Σ_unseen q)`` (where the reward is, given it is unseen). marginals (H, W, C);
    known (H, W) bool; reward (C,) → (H, W), inf where ``q(c) = 0``.
    """
    q = marginals @ reward
    unseen = np.where(known, 0.0, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        surprise = np.where(known, -np.log(q), -np.log(unseen / max(unseen.sum(), 1e-300)))
    return np.where(np.isnan(surprise), np.inf, surprise)


def pose_information_gain(entropy: np.ndarray, opaque: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Information gain of the view from every pose: (H, W) cell entropies and opacity → (4, H, W).

    Cells outside the arrays count as transparent and certain."""
    h, w = entropy.shape
    v = offsets.shape[1]
    ent, opq = np.pad(entropy, v), np.pad(opaque, v)
    ys, xs = np.meshgrid(np.arange(h) + v, np.arange(w) + v, indexing="ij")
    gains = np.zeros((4, h, w))
    for d in range(4):
        cy = ys[..., None, None] + offsets[d, ..., 0]     # (H, W, V, V)
        cx = xs[..., None, None] + offsets[d, ..., 1]
        blocked = opq[cy, cx].reshape(-1, v, v).copy()
        blocked[:, v - 1, v // 2] = False
        visible = view_visibility(blocked)
        gains[d] = revealed_information_gain(torch.from_numpy(ent[cy, cx].reshape(-1, v * v)),
                                             torch.from_numpy(visible.reshape(-1, v * v))).reshape(h, w).numpy()
    return gains


@dataclass
class MapPlannerConfig:
    n_samples: int = 8                 # completions of the map per decision (Monte Carlo over the unknown)
    inpaint_steps: int = 4             # AmusedScheduler unmasking steps per completion
    preference_precision: float = 4.0  # λ: nats per step without the reward
    info_gain_weight: float = 1.0      # β: weight of the information gain about the map (0: off)
    novelty_weight: float = 8.0        # ν: weight of the novelty of untried local rules
    gamma: float = 16.0                # action precision of softmax(−γ Q)
    horizon: int = 100                 # steps charged where no completion reaches the reward

    def __post_init__(self):
        if self.n_samples < 1 or self.inpaint_steps < 1 or self.horizon < 1:
            raise ValueError("n_samples, inpaint_steps and horizon must be >= 1")
        for name in ("preference_precision", "info_gain_weight", "novelty_weight", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"MapPlannerConfig.{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class MapPlan:
    """One decision: the action, Q of every action (nats), the marginals and crop it was made on."""

    action: int
    q: np.ndarray
    probs: np.ndarray
    info_gain: float                   # expected information gain of the view after the chosen action
    marginals: np.ndarray = field(repr=False)
    crop: tuple[slice, slice] = field(repr=False)


class MapEFEPlanner:
    """Chooses actions on a ``BeliefMap`` by the expected free energy above (see the module doc)."""

    def __init__(self, action_names: Sequence[str], config: MapPlannerConfig | None = None,
                 inpainter: MapInpainter | None = None, seed: int = 0):
        self.action_names = list(action_names)
        self.config = config or MapPlannerConfig()
        self.inpainter = inpainter
        self.generator = torch.Generator().manual_seed(seed)
        # the completions of every decision share one noise seed (common random numbers), so that the
        # plan changes with the map, not with the draw
        self.completion_seed = seed

    def beliefs(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Marginals (H, W, C) and completions (K + 1, H, W) of a crop: the model's K, and one in which
        every unseen cell is empty. That last one keeps a way into the unseen where the model closes
        every gap (a frontier search as one hypothesis among K + 1); without a model it is the only
        completion, and the marginals are a uniform prior over the codes."""
        open_space = np.where(cells == UNKNOWN, EMPTY, cells)[None]
        if self.inpainter is None:
            probs = np.full((*cells.shape, N_CELL_CODES), 1.0 / (N_CELL_CODES - 1))
            probs[..., UNKNOWN] = 0.0
            known = cells != UNKNOWN
            probs[known] = np.eye(N_CELL_CODES)[cells[known]]
            return probs, open_space
        completions = self.inpainter.inpaint(cells, self.config.n_samples, self.config.inpaint_steps,
                                             torch.Generator().manual_seed(self.completion_seed))
        return self.inpainter.marginals(cells), np.concatenate([completions, open_space])

    def plan(self, belief: BeliefMap, rules: LocalRules) -> MapPlan:
        cfg, lam = self.config, self.config.preference_precision
        crop = belief.known_box(belief.view_size)
        cells = belief.cells[crop]
        y, x, d = belief.pose[0] - crop[0].start, belief.pose[1] - crop[1].start, belief.pose[2]
        tables = RuleTables.build(rules, self.action_names)
        layer = tables.carried.index(belief.carried) if belief.carried in tables.carried else 0
        marginals, completions = self.beliefs(cells)
        entropy = categorical_entropy(torch.from_numpy(marginals)).numpy()
        opaque = marginals[..., list(OPAQUE_CODES)].sum(-1) > 0.5
        gain = pose_information_gain(entropy, opaque, view_offsets(belief.view_size))      # (4, H, W)

        # the reward hypotheses: a rewarding cell seen costs 0; else the unseen cell c with the surprise
        # −log q(c | the reward is unseen), q normalised over the unseen cells. The way to it is a
        # shortest path on each completion, the cost averaged over the completions.
        surprise = torch.from_numpy(reward_surprise(marginals, cells != UNKNOWN, tables.reward))
        reach = lam + _ahead(surprise, float("inf"))                                           # (4, H, W)
        enter, pickup = self._costs(tables, completions)
        stop = reach[None, None].expand(len(completions), len(tables.carried), -1, -1, -1)
        to_reward = shortest_costs(stop, enter, pickup, step=lam).clamp_max(lam * cfg.horizon).mean(0)  # (L, 4, H, W)
        front_codes = _ahead(torch.from_numpy(cells), UNKNOWN).numpy()                          # (4, H, W)
        rule_novelty = tables.novelty[:, front_codes].max(-1)                                   # (L, 4, H, W)
        stop = (to_reward - cfg.info_gain_weight * torch.from_numpy(gain)[None]
                - cfg.novelty_weight * torch.from_numpy(rule_novelty))
        enter_k, pickup_k = self._costs(tables, cells[None])
        value = shortest_costs(stop[None], enter_k, pickup_k, step=lam)[0]                      # (L, 4, H, W)

        q = self._action_values(value, tables, layer, y, x, d, front_codes[d, y, x])
        probs = policy_posterior(torch.from_numpy(q), cfg.gamma).numpy()
        action = int(torch.multinomial(torch.from_numpy(probs), 1, generator=self.generator))
        after = self._pose_after(self.action_names[action], y, x, d, tables, layer, front_codes[d, y, x])
        return MapPlan(action, q, probs, float(gain[after[2], after[0], after[1]]), marginals, crop)

    @staticmethod
    def _costs(tables: RuleTables, maps: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """enter and pickup (K, L, H, W) of the maps (K, H, W) under the rule tables."""
        return tuple(torch.from_numpy(np.ascontiguousarray(getattr(tables, name)[:, maps].transpose(1, 0, 2, 3)))
                     for name in ("enter", "pickup"))

    def _pose_after(self, name: str, y: int, x: int, d: int, tables: RuleTables, layer: int, front: int):
        if name == "left":
            return y, x, (d - 1) % 4
        if name == "right":
            return y, x, (d + 1) % 4
        if name == "forward" and tables.enter[layer, front] == 1.0 and not tables.goal[layer, front]:
            return y + STEP[d][0], x + STEP[d][1], d
        return y, x, d

    def _action_values(self, value: torch.Tensor, tables: RuleTables, layer: int,
                       y: int, x: int, d: int, front: int) -> np.ndarray:
        """Q(a) = λ + G of the pose (and layer) the action leads to, less the novelty of its rule."""
        lam, cfg = self.config.preference_precision, self.config
        here = float(value[layer, d, y, x])
        fy, fx = y + STEP[d][0], x + STEP[d][1]
        q = np.empty(len(self.action_names))
        for a, name in enumerate(self.action_names):
            after = here
            if name in ("left", "right"):
                _, _, turned = self._pose_after(name, y, x, d, tables, layer, front)
                after = float(value[layer, turned, y, x])
            elif name == "forward" and tables.goal[layer, front]:
                after = 0.0
            elif name == "forward" and tables.trap[layer, front]:
                after = lam * cfg.horizon
            elif name == "forward" and tables.enter[layer, front] == 1.0:
                after = float(value[layer, d, fy, fx])
            elif name == "toggle" and tables.enter[layer, front] == 2.0:
                after = lam + float(value[layer, d, fy, fx])
            elif name == "pickup" and tables.pickup[layer, front] >= 0:
                after = float(value[tables.pickup[layer, front], d, y, x])
            q[a] = lam + after - cfg.novelty_weight * tables.novelty[layer, front, a]
        return q


__all__ = ["FORWARD_OUTCOMES", "LocalRules", "MapEFEPlanner", "MapPlan", "MapPlannerConfig", "RuleTables",
           "pose_information_gain", "reward_surprise", "shortest_costs"]
