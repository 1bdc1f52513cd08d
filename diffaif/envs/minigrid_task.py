"""MiniGrid as a diffaif task: compact hidden state, egocentric symbolic view, BFS distance to goal.

``MiniGridTask`` wraps any MiniGrid env (``gym.make("MiniGrid-...")``); nothing of MiniGrid is
re-implemented except the abstract transition model the shortest-path search runs on (``_successor``
mirrors ``MiniGridEnv.step`` for the objects listed there). Per step it gives:

- **observation** (``obs_mode="view"``, default): the agent's egocentric ``V x V`` view (MiniGrid's
  ``image``, V = ``agent_view_size``, 7 by default) with one compact cell code per cell (``CELL_NAMES``:
  object type with the door state folded in, colour dropped), flattened row-major from the view's
  top-left; ``view.reshape(V, V)[row, col]`` has the agent at ``[V - 1, V // 2]`` facing row 0. The
  agent's own cell shows what it carries (MiniGrid's convention). ``obs_direction=True`` appends the
  agent's direction (MiniGrid's compass), one more entry in 0..3. Space: ``MultiDiscrete``. The
  mission string is dropped.
  ``obs_mode="state"`` gives the compact hidden state itself (full observability).
  ``obs_floor=True`` appends, in either mode, the cell code of the tile the agent stands on (empty,
  goal, lava, open door, ...): the sense that tells the agent it has arrived, which the view cannot
  (the agent's own view cell shows what it carries). Preferences over outcomes live on this entry.
- **info["state"]**: the compact hidden state, an int64 vector with the fields ``STATE_FIELDS``
  (``state_space`` holds the bound of each): agent x, y, direction; carried object type and colour
  (0 = nothing); the first door's x, y and state (0 none, 1 open, 2 closed, 3 locked); the first key
  lying on the grid x, y and presence flag; the goal's x, y; the lava gap's x, y (LavaGap; 0 when the
  env has none). Positions are grid coordinates (x right, y down; 0 is the outer wall, so a 0
  position of an absent object is unambiguous). "First" is in x-major grid order. What the vector
  does NOT hold: the static walls (FourRooms' wall gaps, DoorKey's splitting wall, which is the
  door's column) — fix layouts with ``seeds=[...]`` (MiniGrid's ``ReseedWrapper``) where needed.
- **info["distance"]**: the smallest number of actions (within the action subset) from the present
  hidden state to the goal on the true grid: turning, doors, keys and lava accounted for
  (``ShortestPaths``); ``inf`` where the goal cannot be reached (after falling into lava), 0 on it.
- **info["success"]**: whether the episode ended on the goal (lava also *terminates* a MiniGrid
  episode, without reward).

Actions: ``actions`` selects a subset of MiniGrid's seven (indices or names: left, right, forward,
pickup, drop, toggle, done); the wrapper's ``Discrete(len(actions))`` maps to them in that order.
Default: ``default_actions(env_id)`` — the three movement actions, plus pickup and toggle for
tasks with keys and doors (DoorKey, Unlock, ...); all seven for unknown families.

``obs_index=N`` maps every distinct observation (a hashable key of the vector) to an integer in
order of first appearance, as ``Discrete(N)``: tabular agents such as ``QLearningAgent`` then run
unchanged on the view or on the hidden state (``obs_mode="state", obs_index=100000``). The map
belongs to the wrapper instance; exceeding ``N`` distinct observations is an error.

``make_minigrid_task("MiniGrid-Empty-8x8-v0", obs_mode=..., max_steps=...)`` builds one: keys in
``TASK_OPTIONS`` configure the wrapper, the rest go to the MiniGrid env constructor.
``diffaif.envs.make_env`` routes any ``MiniGrid-*`` / ``BabyAI-*`` id (or ``minigrid:<id>``) here.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
from minigrid.core.actions import Actions
from minigrid.core.constants import COLOR_TO_IDX, DIR_TO_VEC, OBJECT_TO_IDX
from minigrid.minigrid_env import MiniGridEnv
from minigrid.wrappers import ReseedWrapper

PREFIX = "minigrid:"
MINIGRID_FAMILIES = ("MiniGrid-", "BabyAI-")

ACTION_NAMES: tuple[str, ...] = tuple(a.name for a in Actions)  # left right forward pickup drop toggle done
MOVE_ACTIONS = (Actions.left, Actions.right, Actions.forward)
OBJECT_ACTIONS = (Actions.left, Actions.right, Actions.forward, Actions.pickup, Actions.toggle)
# Families that need keys / doors / objects: movement plus pickup and toggle.
OBJECT_FAMILIES = ("DoorKey", "Unlock", "KeyCorridor", "LockedRoom", "BlockedUnlockPickup", "ObstructedMaze",
                   "MultiRoom", "Fetch", "GoToDoor", "GoToObject", "PutNear", "RedBlueDoors", "Memory")
MOVE_FAMILIES = ("Empty", "FourRooms", "LavaGap", "LavaCrossing", "SimpleCrossing", "DistShift", "Dynamic-Obstacles")

# Compact cell codes of the view: MiniGrid's (type, state) folded into one category, colour dropped.
CELL_NAMES: tuple[str, ...] = ("unseen", "empty", "wall", "floor", "door_open", "door_closed", "door_locked",
                               "key", "ball", "box", "goal", "lava")
N_CELL_CODES = len(CELL_NAMES)
_CELL_LUT = np.zeros((len(OBJECT_TO_IDX), 3), dtype=np.int64)  # [type_idx, state] -> cell code
for _name, _idx in OBJECT_TO_IDX.items():
    if _name == "door":
        _CELL_LUT[_idx] = [CELL_NAMES.index(f"door_{s}") for s in ("open", "closed", "locked")]
    elif _name in CELL_NAMES:
        _CELL_LUT[_idx] = CELL_NAMES.index(_name)
    else:  # "agent" never appears in the agent's view; map to empty
        _CELL_LUT[_idx] = CELL_NAMES.index("empty")

STATE_FIELDS: tuple[str, ...] = ("agent_x", "agent_y", "agent_dir", "carried_type", "carried_colour",
                                 "door_x", "door_y", "door_state", "key_x", "key_y", "key_present",
                                 "goal_x", "goal_y", "gap_x", "gap_y")
CARRIED_TYPES: tuple[str, ...] = ("none", "key", "ball", "box")
DOOR_STATES: tuple[str, ...] = ("none", "open", "closed", "locked")  # MiniGrid's door state + 1

OBS_MODES = ("view", "state")
TASK_OPTIONS = ("actions", "obs_mode", "obs_direction", "obs_floor", "obs_index", "seeds", "compute_distance",
                "max_search_states")

_T = {name: idx for name, idx in OBJECT_TO_IDX.items()}
_EMPTY = (_T["empty"], 0, 0)
_OVERLAP = {_T["empty"], _T["goal"], _T["lava"], _T["floor"]}
_PICKUP = {_T["key"], _T["ball"], _T["box"]}
_DX = [int(v[0]) for v in DIR_TO_VEC]
_DY = [int(v[1]) for v in DIR_TO_VEC]


def is_minigrid_id(name: str) -> bool:
    """True for ``minigrid:<id>`` and for ids of MiniGrid's own families (``MiniGrid-*``, ``BabyAI-*``)."""
    return name.startswith(PREFIX) or name.startswith(MINIGRID_FAMILIES)


def _family(env_id: str) -> str:
    return env_id.split("/")[-1].removeprefix("MiniGrid-").removeprefix("BabyAI-")


def default_actions(env_id: str) -> tuple[int, ...]:
    """The action subset a task needs: movement (3), movement + pickup + toggle (5), or all 7."""
    family = _family(env_id)
    if family.startswith(OBJECT_FAMILIES):
        return tuple(int(a) for a in OBJECT_ACTIONS)
    if family.startswith(MOVE_FAMILIES):
        return tuple(int(a) for a in MOVE_ACTIONS)
    return tuple(int(a) for a in Actions)


def _action_index(action: int | str) -> int:
    if isinstance(action, str):
        if action not in ACTION_NAMES:
            raise ValueError(f"unknown MiniGrid action {action!r}; valid: {list(ACTION_NAMES)}")
        return ACTION_NAMES.index(action)
    if not 0 <= int(action) < len(ACTION_NAMES):
        raise ValueError(f"MiniGrid action index {action} outside [0, {len(ACTION_NAMES)})")
    return int(action)


# ----------------------------------------------------------------------------------------------
# Hidden state and view encodings


def encode_view(image: np.ndarray) -> np.ndarray:
    """MiniGrid's egocentric ``image`` (V, V, 3) indexed [x, y] -> compact cell codes (V*V,), row-major [y, x]."""
    codes = _CELL_LUT[image[..., 0], np.minimum(image[..., 2], 2)]
    return codes.T.reshape(-1).astype(np.int64)


def floor_code(world: MiniGridEnv) -> int:
    """The cell code (``CELL_NAMES``) of the tile under the agent; "empty" where there is no object."""
    cell = world.grid.get(*world.agent_pos)
    if cell is None:
        return CELL_NAMES.index("empty")
    type_idx, _, state = cell.encode()
    return int(_CELL_LUT[type_idx, min(state, 2)])


def state_space(width: int, height: int) -> spaces.MultiDiscrete:
    """Bounds of the compact hidden state (``STATE_FIELDS``) on a ``width`` x ``height`` grid."""
    w, h = width, height
    nvec = [w, h, 4, len(CARRIED_TYPES), len(COLOR_TO_IDX) + 1, w, h, len(DOOR_STATES), w, h, 2, w, h, w, h]
    return spaces.MultiDiscrete(np.array(nvec, dtype=np.int64))


def hidden_state(world: MiniGridEnv, grid_code: np.ndarray | None = None) -> np.ndarray:
    """The compact hidden state (``STATE_FIELDS``) of a reset MiniGrid env, int64 (15,).

    ``grid_code``: ``world.grid.encode()`` when already at hand (W, H, 3).
    """
    enc = world.grid.encode() if grid_code is None else grid_code
    state = np.zeros(len(STATE_FIELDS), dtype=np.int64)
    state[0], state[1] = int(world.agent_pos[0]), int(world.agent_pos[1])
    state[2] = int(world.agent_dir)
    carried = world.carrying
    if carried is not None:
        state[3] = CARRIED_TYPES.index(carried.type) if carried.type in CARRIED_TYPES else 0
        state[4] = COLOR_TO_IDX[carried.color] + 1
    types = enc[..., 0]
    doors = np.argwhere(types == _T["door"])
    if len(doors):
        x, y = doors[0]
        state[5], state[6], state[7] = x, y, int(enc[x, y, 2]) + 1
    keys = np.argwhere(types == _T["key"])
    if len(keys):
        state[8], state[9], state[10] = keys[0][0], keys[0][1], 1
    goals = np.argwhere(types == _T["goal"])
    if len(goals):
        state[11], state[12] = goals[0]
    gap = getattr(world, "gap_pos", None)
    if gap is not None:
        state[13], state[14] = int(gap[0]), int(gap[1])
    return state


# ----------------------------------------------------------------------------------------------
# Shortest paths on the true grid


class ShortestPaths:
    """Exact shortest paths to the goal over MiniGrid's dynamics, from one reset layout.

    A search state is ``(x, y, dir, carried, changes)``: ``carried`` the carried object's MiniGrid
    encoding (or None) and ``changes`` the sorted cells whose encoding differs from the grid at
    construction (a picked-up key, an opened door, a dropped object). All states reachable from the
    env's present state with the action subset ``actions`` are enumerated once; ``distance`` is then
    a table look-up (``inf``: goal unreachable, e.g. after lava). Modelled as ``MiniGridEnv.step``
    does: turning; forward onto empty / floor / goal / lava / open doors (goal and lava end the
    episode); pickup of keys, balls and boxes with empty hands; drop on an empty cell; toggle of
    doors (a locked door opens with the key of its colour, which is kept) and of boxes (replaced by
    the contents they held at construction). Moving obstacles (Dynamic-Obstacles) are not modelled.
    """

    def __init__(self, world: MiniGridEnv, actions: Sequence[int], max_states: int = 2_000_000):
        self.actions = tuple(int(a) for a in actions)
        enc = world.grid.encode()
        self.width, self.height = enc.shape[:2]
        self.base_code = enc.copy()
        self.base = [[tuple(int(v) for v in enc[x, y]) for y in range(self.height)] for x in range(self.width)]
        self.box_contents = {}
        for x in range(self.width):
            for y in range(self.height):
                cell = world.grid.get(x, y)
                if cell is not None and cell.type == "box":
                    self.box_contents[(x, y)] = cell.contains.encode() if cell.contains is not None else _EMPTY
        start = self.key(world, enc)
        # Forward enumeration: next_state[s][i] for action i of the subset; terminal kinds
        self.next_state: dict[tuple, list[tuple]] = {}
        self.terminal: dict[tuple, str] = {}
        queue = deque([start])
        seen = {start}
        while queue:
            s = queue.popleft()
            succ = []
            for a in self.actions:
                t, kind = self._successor(s, a)
                if kind is not None:
                    self.terminal[t] = kind
                succ.append(t)
                if t not in seen:
                    seen.add(t)
                    if len(seen) > max_states:
                        raise RuntimeError(f"shortest-path search exceeded max_states={max_states}")
                    if kind is None:
                        queue.append(t)
            self.next_state[s] = succ
        # Backward BFS from the goal states
        predecessors: dict[tuple, list[tuple]] = {}
        for s, succ in self.next_state.items():
            for t in succ:
                predecessors.setdefault(t, []).append(s)
        self.dist: dict[tuple, int] = {s: 0 for s, kind in self.terminal.items() if kind == "goal"}
        queue = deque(self.dist)
        while queue:
            t = queue.popleft()
            for s in predecessors.get(t, ()):
                if s not in self.dist:
                    self.dist[s] = self.dist[t] + 1
                    queue.append(s)
        self.n_states = len(seen)

    def key(self, world: MiniGridEnv, grid_code: np.ndarray | None = None) -> tuple:
        """The search state of ``world`` now (its grid compared with the grid at construction)."""
        enc = world.grid.encode() if grid_code is None else grid_code
        changes = []
        for x, y in np.argwhere(np.any(enc != self.base_code, axis=2)):
            changes.append(((int(x), int(y)), tuple(int(v) for v in enc[x, y])))
        carried = None if world.carrying is None else tuple(int(v) for v in world.carrying.encode())
        return (int(world.agent_pos[0]), int(world.agent_pos[1]), int(world.agent_dir), carried, tuple(sorted(changes)))

    def _successor(self, s: tuple, action: int) -> tuple[tuple, str | None]:
        x, y, d, carried, changes = s
        cells = dict(changes)
        fx, fy = x + _DX[d], y + _DY[d]
        front = cells.get((fx, fy), self.base[fx][fy])
        kind = None
        if action == Actions.left:
            d = (d - 1) % 4
        elif action == Actions.right:
            d = (d + 1) % 4
        elif action == Actions.forward:
            if front[0] in _OVERLAP or (front[0] == _T["door"] and front[2] == 0):
                x, y = fx, fy
            if front[0] == _T["goal"]:
                kind = "goal"
            elif front[0] == _T["lava"]:
                kind = "lava"
        elif action == Actions.pickup:
            if front[0] in _PICKUP and carried is None:
                carried, cells[(fx, fy)] = front, _EMPTY
        elif action == Actions.drop:
            if front[0] == _T["empty"] and carried is not None:
                cells[(fx, fy)], carried = carried, None
        elif action == Actions.toggle:
            if front[0] == _T["door"]:
                if front[2] == 2:  # locked: opens with the key of its colour
                    if carried is not None and carried[0] == _T["key"] and carried[1] == front[1]:
                        cells[(fx, fy)] = (front[0], front[1], 0)
                else:
                    cells[(fx, fy)] = (front[0], front[1], 1 - front[2])
            elif front[0] == _T["box"]:
                cells[(fx, fy)] = self.box_contents.get((fx, fy), _EMPTY)
        changes = tuple(sorted((p, v) for p, v in cells.items() if v != self.base[p[0]][p[1]]))
        return (x, y, d, carried, changes), kind

    def distance(self, s: tuple) -> float:
        """Fewest actions from search state ``s`` to the goal (0 on it, inf if unreachable or unknown)."""
        return float(self.dist.get(s, np.inf))

    def action_values(self, s: tuple) -> np.ndarray:
        """Steps to goal after each action of the subset and acting optimally: 1 + distance(successor)."""
        if s not in self.next_state:
            return np.full(len(self.actions), np.inf)
        return np.array([1.0 + self.distance(t) for t in self.next_state[s]])


# ----------------------------------------------------------------------------------------------
# The wrapper


class MiniGridTask(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A MiniGrid env as a diffaif task (see the module docstring for spaces and info keys)."""

    def __init__(self, env: gym.Env, actions: Sequence[int | str] | None = None, obs_mode: str = "view",
                 obs_direction: bool = False, obs_floor: bool = False, obs_index: int = 0, compute_distance: bool = True,
                 max_search_states: int = 2_000_000, seeds: Sequence[int] | None = None,
                 env_id: str | None = None):
        env_id = env_id or (env.spec.id if env.spec is not None else "")
        gym.utils.RecordConstructorArgs.__init__(
            self, actions=None if actions is None else list(actions), obs_mode=obs_mode, obs_direction=obs_direction,
            obs_floor=obs_floor, obs_index=obs_index, compute_distance=compute_distance, max_search_states=max_search_states,
            seeds=None if seeds is None else list(seeds), env_id=env_id)
        self.reseeded = seeds is not None
        if seeds is not None:
            if len(seeds) == 0:
                raise ValueError("seeds must hold at least one layout seed")
            env = ReseedWrapper(env, seeds=[int(s) for s in seeds])
        super().__init__(env)
        world = env.unwrapped
        if not isinstance(world, MiniGridEnv):
            raise ValueError(f"MiniGridTask needs a MiniGrid env, got {type(world).__name__}")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        if obs_index < 0:
            raise ValueError(f"obs_index must be >= 0, got {obs_index}")
        self.env_id = env_id
        self.actions = tuple(_action_index(a) for a in actions) if actions is not None else default_actions(env_id)
        if not self.actions:
            raise ValueError("the action subset is empty")
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"the action subset repeats an action: {self.actions}")
        self.action_names = [ACTION_NAMES[a] for a in self.actions]
        self.action_space = spaces.Discrete(len(self.actions))
        self.obs_mode, self.obs_direction, self.obs_index = obs_mode, bool(obs_direction), int(obs_index)
        self.obs_floor = bool(obs_floor)
        self.compute_distance, self.max_search_states = bool(compute_distance), int(max_search_states)
        self.view_size = int(world.agent_view_size)
        self.state_space = state_space(world.width, world.height)
        if obs_mode == "state":
            nvec = list(self.state_space.nvec)
        else:
            nvec = [N_CELL_CODES] * self.view_size**2 + ([4] if self.obs_direction else [])
        vector = spaces.MultiDiscrete(np.array(nvec + ([N_CELL_CODES] if self.obs_floor else []), dtype=np.int64))
        self.vector_space = vector  # the observation before ``obs_index``
        self.observation_space = spaces.Discrete(self.obs_index) if self.obs_index else vector
        self._index: dict[tuple, int] = {}
        self.shortest_paths: ShortestPaths | None = None

    # -- encodings
    def _vector_obs(self, raw_obs: dict, state: np.ndarray) -> np.ndarray:
        if self.obs_mode == "state":
            vector = state.copy()
        else:
            vector = encode_view(raw_obs["image"])
            if self.obs_direction:
                vector = np.append(vector, int(raw_obs["direction"]))
        if self.obs_floor:
            vector = np.append(vector, floor_code(self.env.unwrapped))
        return vector

    def _observation(self, raw_obs: dict, state: np.ndarray) -> Any:
        vector = self._vector_obs(raw_obs, state)
        if not self.obs_index:
            return vector
        key = tuple(vector.tolist())
        if key not in self._index:
            if len(self._index) >= self.obs_index:
                raise RuntimeError(f"more than obs_index={self.obs_index} distinct observations; raise obs_index")
            self._index[key] = len(self._index)
        return self._index[key]

    def _info(self, info: dict, grid_code: np.ndarray, state: np.ndarray, terminated: bool) -> dict:
        world = self.env.unwrapped
        info = dict(info)
        info["state"] = state
        if self.shortest_paths is not None:
            info["distance"] = self.shortest_paths.distance(self.shortest_paths.key(world, grid_code))
        cell = world.grid.get(*world.agent_pos)
        info["success"] = bool(terminated and cell is not None and cell.type == "goal")
        return info

    # -- gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if self.reseeded and seed is not None:  # the layout seeds decide; seed the action sampler only
            self.action_space.seed(seed)
            seed = None
        raw_obs, info = self.env.reset(seed=seed, options=options)
        world = self.env.unwrapped
        grid_code = world.grid.encode()
        if self.compute_distance:
            self.shortest_paths = ShortestPaths(world, self.actions, self.max_search_states)
        state = hidden_state(world, grid_code)
        return self._observation(raw_obs, state), self._info(info, grid_code, state, False)

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} outside {self.action_space}")
        raw_obs, reward, terminated, truncated, info = self.env.step(self.actions[int(action)])
        world = self.env.unwrapped
        grid_code = world.grid.encode()
        state = hidden_state(world, grid_code)
        return (self._observation(raw_obs, state), float(reward), terminated, truncated,
                self._info(info, grid_code, state, terminated))

    # -- helpers for agents that are allowed the true model (the oracle)
    def current_key(self) -> tuple:
        """Search state of the env now, for ``shortest_paths`` (which must exist: reset first)."""
        if self.shortest_paths is None:
            raise RuntimeError("no shortest paths: reset the env first (and keep compute_distance=True)")
        return self.shortest_paths.key(self.env.unwrapped)

    def view_grid(self, observation: np.ndarray) -> np.ndarray:
        """A ``view`` observation as its (V, V) grid of cell codes ([row, col], agent at [V-1, V//2])."""
        v = self.view_size
        return np.asarray(observation)[: v * v].reshape(v, v)


def split_options(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split keyword options into (wrapper options ``TASK_OPTIONS``, MiniGrid constructor options)."""
    task = {k: v for k, v in options.items() if k in TASK_OPTIONS}
    return task, {k: v for k, v in options.items() if k not in TASK_OPTIONS}


def make_minigrid_task(name: str, **options: Any) -> MiniGridTask:
    """``MiniGridTask`` around ``gym.make(id)`` for ``name`` = ``id`` or ``minigrid:id``.

    Options named in ``TASK_OPTIONS`` configure the wrapper (``seeds``: a list of layout seeds cycled
    by MiniGrid's ``ReseedWrapper``, which then ignores reset seeds); the others go to the env.
    """
    env_id = name.removeprefix(PREFIX)
    if env_id not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith(MINIGRID_FAMILIES))
        raise ValueError(f"unknown MiniGrid env {env_id!r}; e.g. {known[:8]} ... ({len(known)} ids)")
    task_options, env_options = split_options(options)
    try:
        env = gym.make(env_id, disable_env_checker=True, **env_options)
    except TypeError as err:
        if "unexpected keyword argument" not in str(err):
            raise
        raise ValueError(f"bad env option for {env_id!r}: {err}; wrapper options: {list(TASK_OPTIONS)}") from None
    return MiniGridTask(env, env_id=env_id, **task_options)


__all__ = [
    "ACTION_NAMES", "CELL_NAMES", "MiniGridTask", "N_CELL_CODES", "STATE_FIELDS", "ShortestPaths",
    "default_actions", "encode_view", "hidden_state", "is_minigrid_id", "make_minigrid_task", "state_space",
]
