"""The method paper's grid worlds as gymnasium environments.

One class covers both tasks: ``grid4x4`` (fully observable, deterministic) and ``grid8x8``
(a per-cell observability level and a slip probability). The exact model is exposed as matrices
(``transition_matrix``, ``observation_matrix``) so that the oracle and the exact-EFE reference use
the very same dynamics the environment samples from.
"""
from __future__ import annotations

from collections import deque
from typing import Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# (row, col) displacement of each action; index = action id.
ACTIONS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
ACTION_NAMES: tuple[str, ...] = ("up", "down", "left", "right")


class GridWorld(gym.Env):
    """Navigate a ``size`` x ``size`` grid from ``start`` to ``goal``.

    Hidden state and observation are both cell indices ``row * size + col``. In a cell with
    observability level ``l < 1`` the observed cell is, with probability ``1 - l``, replaced by a
    uniformly chosen free 4-neighbour (``obs_noise="neighbour"``) or any free cell
    (``obs_noise="random"``). With probability ``slip`` the intended move is replaced by a
    uniformly random action. Bumping a wall or the border leaves the agent in place.
    Reward is 1 on reaching the goal (the episode terminates) and 0 otherwise; episodes are
    truncated after ``max_steps``. ``info["state"]`` holds the true hidden cell.
    """

    action_names = ACTION_NAMES
    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}

    def __init__(
        self,
        size: int = 4,
        start: Sequence[int] = (0, 0),
        goal: Sequence[int] | None = None,
        walls: Sequence[Sequence[int]] = (),
        slip: float = 0.0,
        observability: Sequence[Sequence[float]] | None = None,
        obs_noise: str = "neighbour",
        max_steps: int = 100,
        render_mode: str | None = None,
    ):
        if size < 2:
            raise ValueError(f"size must be >= 2, got {size}")
        if not 0.0 <= slip <= 1.0:
            raise ValueError(f"slip must be in [0, 1], got {slip}")
        if obs_noise not in ("neighbour", "random"):
            raise ValueError(f"obs_noise must be 'neighbour' or 'random', got {obs_noise!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.size = int(size)
        self.start = self._check_cell("start", start)
        self.goal = self._check_cell("goal", goal if goal is not None else (size - 1, size - 1))
        self.walls = frozenset(self._check_cell("wall", w) for w in walls)
        if self.start in self.walls or self.goal in self.walls:
            raise ValueError("start and goal must not be walls")
        self.slip = float(slip)
        self.obs_noise = obs_noise
        self.max_steps = int(max_steps)
        self.render_mode = render_mode
        if observability is None:
            self.observability = np.ones((size, size))
        else:
            self.observability = np.asarray(observability, dtype=np.float64)
            if self.observability.shape != (size, size):
                raise ValueError(f"observability must have shape ({size}, {size}), got {self.observability.shape}")
            if np.any(self.observability < 0) or np.any(self.observability > 1):
                raise ValueError("observability levels must lie in [0, 1]")

        self.n_cells = size * size
        self.observation_space = spaces.Discrete(self.n_cells)
        self.action_space = spaces.Discrete(len(ACTIONS))
        self._T = self._build_transitions()
        self._O = self._build_observations()
        self._distance = self._bfs_distances()
        self._state = self.start
        self._steps = 0

    # ---- geometry -------------------------------------------------------------------------
    def _check_cell(self, what: str, cell: Sequence[int]) -> int:
        r, c = (int(x) for x in cell)
        if not (0 <= r < self.size and 0 <= c < self.size):
            raise ValueError(f"{what} {tuple(cell)} lies outside the {self.size}x{self.size} grid")
        return r * self.size + c

    def position(self, cell: int) -> tuple[int, int]:
        """(row, col) of a cell index."""
        return divmod(int(cell), self.size)

    def _move(self, cell: int, action: int) -> int:
        r, c = self.position(cell)
        dr, dc = ACTIONS[action]
        nr, nc = r + dr, c + dc
        if not (0 <= nr < self.size and 0 <= nc < self.size):
            return cell
        nxt = nr * self.size + nc
        return cell if nxt in self.walls else nxt

    def free_cells(self) -> list[int]:
        return [s for s in range(self.n_cells) if s not in self.walls]

    # ---- exact model ----------------------------------------------------------------------
    def _build_transitions(self) -> np.ndarray:
        n_a = len(ACTIONS)
        T = np.zeros((self.n_cells, n_a, self.n_cells))
        for s in range(self.n_cells):
            for a in range(n_a):
                if s == self.goal:  # absorbing: the episode is over
                    T[s, a, s] = 1.0
                    continue
                T[s, a, self._move(s, a)] += 1.0 - self.slip
                for b in range(n_a):
                    T[s, a, self._move(s, b)] += self.slip / n_a
        return T

    def _build_observations(self) -> np.ndarray:
        O = np.zeros((self.n_cells, self.n_cells))
        free = self.free_cells()
        for s in range(self.n_cells):
            level = self.observability[self.position(s)]
            if self.obs_noise == "neighbour":
                others = sorted({self._move(s, a) for a in range(len(ACTIONS))} - {s})
            else:
                others = [o for o in free if o != s]
            if not others:
                others = [s]
            O[s, s] += level
            O[s, others] += (1.0 - level) / len(others)
        return O

    def transition_matrix(self) -> np.ndarray:
        """``P[s, a, s']`` of shape (n_cells, n_actions, n_cells); the goal is absorbing."""
        return self._T.copy()

    def observation_matrix(self) -> np.ndarray:
        """``p(o | s)`` as ``O[s, o]`` of shape (n_cells, n_cells)."""
        return self._O.copy()

    def _bfs_distances(self) -> np.ndarray:
        dist = np.full(self.n_cells, np.inf)
        dist[self.goal] = 0
        queue = deque([self.goal])
        while queue:
            cell = queue.popleft()
            for a in range(len(ACTIONS)):
                nxt = self._move(cell, a)  # moves are symmetric, so BFS from the goal is exact
                if dist[nxt] == np.inf:
                    dist[nxt] = dist[cell] + 1
                    queue.append(nxt)
        return dist

    def distance_to_goal(self, cell: int | None = None) -> float:
        """Shortest-path length (in moves) from ``cell`` (default: the true state) to the goal."""
        return float(self._distance[self._state if cell is None else int(cell)])

    def distances(self) -> np.ndarray:
        """Shortest-path length to the goal of every cell, shape (n_cells,) (inf where unreachable)."""
        return self._distance.copy()

    # ---- gymnasium API --------------------------------------------------------------------
    def _observe(self) -> int:
        return int(self.np_random.choice(self.n_cells, p=self._O[self._state]))

    def _info(self) -> dict:
        return {"state": int(self._state), "distance": self.distance_to_goal()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._state = self.start
        self._steps = 0
        return self._observe(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"invalid action {action!r}; expected an int in [0, {len(ACTIONS)})")
        self._state = int(self.np_random.choice(self.n_cells, p=self._T[self._state, int(action)]))
        self._steps += 1
        terminated = self._state == self.goal
        truncated = (not terminated) and self._steps >= self.max_steps
        return self._observe(), float(terminated), terminated, truncated, self._info()

    def render(self):
        if self.render_mode == "ansi":
            return self._render_ansi()
        if self.render_mode == "rgb_array":
            return self._render_rgb()
        return None

    def _render_ansi(self) -> str:
        rows = []
        for r in range(self.size):
            row = []
            for c in range(self.size):
                cell = r * self.size + c
                ch = "#" if cell in self.walls else "G" if cell == self.goal else "."
                row.append("A" if cell == self._state else ch)
            rows.append(" ".join(row))
        return "\n".join(rows) + "\n"

    def _render_rgb(self, scale: int = 16) -> np.ndarray:
        # Grey level = observability (dark cells are less observable), as in the paper's Fig. 1.
        shade = (55 + 200 * self.observability).astype(np.uint8)
        img = np.repeat(shade[:, :, None], 3, axis=2)
        for w in self.walls:
            img[self.position(w)] = (0, 0, 0)
        img[self.position(self.goal)] = (40, 180, 60)
        img[self.position(self._state)] = (220, 40, 40)
        return np.kron(img, np.ones((scale, scale, 1), dtype=np.uint8))
