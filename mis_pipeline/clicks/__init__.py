"""Click simulation for training (RITM's MultiPointSampler as MIS configures it), click maps,
and the iterative-training next click.

Public API
----------
:class:`Clicks`            ``points (K, 2) int32 (row, col)``, ``labels (K,) int8``, ``valid (K,) bool``
:func:`sample_clicks`      mask -> :class:`Clicks` (K = 2 * max_points; positives first half)
:func:`click_maps`         numpy ``(2, H, W) float32`` disk maps ``[positive, negative]``
:func:`click_maps_torch`   the same for a batch, ``(B, 2, H, W)`` on the inputs' device
:func:`next_clicks`        iterative training: a random pixel deep inside the larger error
:func:`add_clicks`         write new clicks into the first free slot of their half
"""

from .iterative import add_clicks, next_clicks
from .maps import click_maps, click_maps_torch, disk_offsets
from .sampler import sample_clicks
from .types import Clicks, empty_clicks

__all__ = [
    "Clicks",
    "add_clicks",
    "click_maps",
    "click_maps_torch",
    "disk_offsets",
    "empty_clicks",
    "next_clicks",
    "sample_clicks",
]
