"""The hidden state of a MiniGrid agent that sees only its egocentric view: an allocentric belief map.

The map is a ``(2R+1, 2R+1)`` array of cell codes (``CELL_NAMES``; ``UNKNOWN`` = never seen) in a frame
whose centre is the agent's start cell and whose axes are MiniGrid's compass (x east, y south): the
observed direction is absolute, so only the translation has to be tracked. The pose ``(y, x, dir)`` is
dead-reckoned: turning is observed, pickup and toggle never move, and after ``forward`` the agent has
moved one cell exactly when the new view fits the map better shifted by one cell than unshifted
(``moved_forward``); a tie (a view that looks the same either way) goes to the learned rule for the
cell in front.

View geometry (MiniGrid's ``gen_obs``): view cell ``[row, col]`` of a ``V x V`` view, agent at
``[V - 1, V // 2]`` facing row 0, lies ``f = V - 1 - row`` cells ahead and ``l = col - V // 2`` cells to
the right; its map offset is ``f · dir_vec + l · right_vec`` with ``right_vec = (−dir_y, dir_x)``.
Walls and closed or locked doors block the view (``OPAQUE_CODES``; MiniGrid's ``see_behind``), and
``view_visibility`` is MiniGrid's ``Grid.process_vis`` over a batch of views.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from minigrid.core.constants import DIR_TO_VEC

from diffaif.envs.minigrid_task import CELL_NAMES

UNKNOWN = CELL_NAMES.index("unseen")
EMPTY = CELL_NAMES.index("empty")
OPAQUE_CODES: tuple[int, ...] = tuple(CELL_NAMES.index(name) for name in ("wall", "door_closed", "door_locked"))
# (dy, dx) of one step forward for MiniGrid's directions 0..3 (east, south, west, north)
STEP = np.array([[int(v[1]), int(v[0])] for v in DIR_TO_VEC], dtype=np.int64)


def view_offsets(view_size: int) -> np.ndarray:
    """Map offsets ``(dy, dx)`` of every view cell for each direction: (4, V, V, 2) int64."""
    rows, cols = np.meshgrid(np.arange(view_size), np.arange(view_size), indexing="ij")
    ahead, right = view_size - 1 - rows, cols - view_size // 2
    offsets = np.zeros((4, view_size, view_size, 2), dtype=np.int64)
    for d in range(4):
        forward, right_vec = STEP[d], np.array([STEP[d][1], -STEP[d][0]])  # (dy, dx) of right = (dx, −dy)
        offsets[d] = ahead[..., None] * forward + right[..., None] * right_vec
    return offsets


def view_visibility(opaque: np.ndarray) -> np.ndarray:
    """Which cells of a batch of views the agent sees: MiniGrid's ``Grid.process_vis``, batched.

    opaque: (P, V, V) bool, [row, col] as in the view (agent at ``[V - 1, V // 2]``) → visible (P, V, V).
    Visibility spreads from the agent's cell row by row away from it, sideways and diagonally forward,
    through cells that do not block the view.
    """
    n, v, _ = opaque.shape
    visible = np.zeros_like(opaque, dtype=bool)
    visible[:, v - 1, v // 2] = True
    for row in reversed(range(v)):
        for cols, step in ((range(v - 1), 1), (range(v - 1, 0, -1), -1)):
            for col in cols:
                spread = visible[:, row, col] & ~opaque[:, row, col]
                visible[:, row, col + step] |= spread
                if row > 0:
                    visible[:, row - 1, col + step] |= spread
                    visible[:, row - 1, col] |= spread
    return visible


@dataclass
class BeliefMap:
    """An allocentric map of cell codes built from egocentric views, with a dead-reckoned pose.

    ``cells`` (M, M) int64, ``UNKNOWN`` where never seen; ``pose`` (y, x, direction) in map indices;
    ``carried`` the cell code the agent's own view cell shows (``EMPTY``: nothing carried).
    """

    radius: int
    view_size: int = 7
    cells: np.ndarray = field(init=False)
    pose: tuple[int, int, int] = field(init=False)
    carried: int = field(init=False, default=EMPTY)

    def __post_init__(self):
        if self.radius < self.view_size:
            raise ValueError(f"map radius {self.radius} must be at least the view size {self.view_size}")
        self._offsets = view_offsets(self.view_size)
        self.reset(None, 0)

    @property
    def size(self) -> int:
        return 2 * self.radius + 1

    def reset(self, view: np.ndarray | None, direction: int) -> None:
        """A new episode: an empty map, the agent at its centre; ``view`` (V, V) the first view."""
        self.cells = np.full((self.size, self.size), UNKNOWN, dtype=np.int64)
        self.pose = (self.radius, self.radius, int(direction))
        self.carried = EMPTY
        if view is not None:
            self.update(view, direction)

    def view_cells(self, y: int, x: int, direction: int) -> tuple[np.ndarray, np.ndarray]:
        """Map indices (ys, xs), each (V, V), of the view from pose (y, x, direction)."""
        off = self._offsets[direction]
        return y + off[..., 0], x + off[..., 1]

    def _inside(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return (ys >= 0) & (ys < self.size) & (xs >= 0) & (xs < self.size)

    def mismatches(self, view: np.ndarray, y: int, x: int, direction: int) -> int:
        """How many seen view cells contradict known map cells when the view is taken from (y, x)."""
        ys, xs = self.view_cells(y, x, direction)
        inside = self._inside(ys, xs)
        own = np.zeros_like(inside)
        own[-1, self.view_size // 2] = True          # the own cell shows what is carried
        known = self.cells[np.clip(ys, 0, self.size - 1), np.clip(xs, 0, self.size - 1)]
        check = inside & ~own & (view != UNKNOWN) & (known != UNKNOWN)
        return int(np.sum(check & (known != view)))

    def moved_forward(self, view: np.ndarray, direction: int, prior_moved: bool) -> bool:
        """After ``forward``: did the agent move one cell? The hypothesis whose view fits the map better;
        ``prior_moved`` on a tie."""
        y, x, _ = self.pose
        dy, dx = STEP[direction]
        stayed = self.mismatches(view, y, x, direction)
        moved = self.mismatches(view, y + dy, x + dx, direction)
        return prior_moved if moved == stayed else moved < stayed

    def move(self, moved: bool, direction: int) -> None:
        """Set the new pose: one cell ahead when ``moved``; the observed direction either way."""
        y, x, _ = self.pose
        if moved:
            dy, dx = STEP[direction]
            y, x = y + dy, x + dx
            if not (0 < y < self.size - 1 and 0 < x < self.size - 1):
                raise RuntimeError(f"the agent left its belief map (radius {self.radius}); raise map_radius")
        self.pose = (int(y), int(x), int(direction))

    def update(self, view: np.ndarray, direction: int) -> np.ndarray:
        """Write the seen cells of ``view`` (V, V) taken from the current pose; → (M, M) bool, the cells
        that were unknown and are now known."""
        y, x, _ = self.pose
        ys, xs = self.view_cells(y, x, direction)
        v = self.view_size
        self.carried = int(view[v - 1, v // 2])
        seen = (view != UNKNOWN) & self._inside(ys, xs)
        seen[v - 1, v // 2] = False
        before = self.cells == UNKNOWN
        self.cells[ys[seen], xs[seen]] = view[seen]
        if self.cells[y, x] == UNKNOWN:    # standing there: passable; what lies under the agent is not shown
            self.cells[y, x] = EMPTY
        return before & (self.cells != UNKNOWN)

    def front(self) -> int:
        """The code of the cell in front of the agent."""
        y, x, d = self.pose
        return int(self.cells[y + STEP[d][0], x + STEP[d][1]])

    def known_box(self, margin: int) -> tuple[slice, slice]:
        """Rows and columns of the known cells' bounding box grown by ``margin`` (clipped to the map)."""
        ys, xs = np.nonzero(self.cells != UNKNOWN)
        lo_y, hi_y = max(ys.min() - margin, 0), min(ys.max() + margin + 1, self.size)
        lo_x, hi_x = max(xs.min() - margin, 0), min(xs.max() + margin + 1, self.size)
        return slice(int(lo_y), int(hi_y)), slice(int(lo_x), int(hi_x))


__all__ = ["BeliefMap", "EMPTY", "OPAQUE_CODES", "STEP", "UNKNOWN", "view_offsets", "view_visibility"]
