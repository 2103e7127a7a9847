"""`cerebras.geometry.geometry` as wsejax provides it: the integer points and rectangles that
`SdkLayout` code regions take for per-PE parameters and routes.

    IntRectangle(IntVector(0, 0), IntVector(1, 4))   # column 0, rows 0..3 (end exclusive)
"""

from __future__ import annotations

import dataclasses

__all__ = ["IntRectangle", "IntVector"]


@dataclasses.dataclass(frozen=True)
class IntVector:
    """A point (x, y): x the column, y the row."""

    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class IntRectangle:
    """The PEs from `ul` (upper left, included) to `lr` (lower right, excluded)."""

    ul: IntVector
    lr: IntVector

    def points(self) -> list[tuple[int, int]]:
        return [(x, y) for y in range(self.ul.y, self.lr.y) for x in range(self.ul.x, self.lr.x)]
