"""The click set handed from the data layer to the trainer, and its slot layout.

Layout (that of RITM's ``points`` tensor, without its ``-1`` padding): ``K = 2 * max_points``
slots; slots ``0 .. M-1`` hold positive clicks and slots ``M .. 2M-1`` negative clicks
(``M = max_points``), each half filled from its start. ``labels`` is therefore fixed by the
slot (1 in the first half, 0 in the second), and ``valid`` says which slots hold a click.
Unused slots have ``points == (0, 0)`` and ``valid == False``; nothing reads them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Clicks", "empty_clicks"]


class Clicks(NamedTuple):
    """Clicks of one sample.

    Attributes
    ----------
    points : (K, 2) int32
        ``(row, col)`` pixel coordinates.
    labels : (K,) int8
        1 positive, 0 negative (``labels[:M] == 1``, ``labels[M:] == 0``).
    valid : (K,) bool
        Which slots hold a click.
    """

    points: np.ndarray
    labels: np.ndarray
    valid: np.ndarray


def empty_clicks(max_points: int) -> Clicks:
    """A click set of ``K = 2 * max_points`` slots, none used."""
    m = int(max_points)
    labels = np.zeros(2 * m, dtype=np.int8)
    labels[:m] = 1
    return Clicks(
        points=np.zeros((2 * m, 2), dtype=np.int32),
        labels=labels,
        valid=np.zeros(2 * m, dtype=bool),
    )
