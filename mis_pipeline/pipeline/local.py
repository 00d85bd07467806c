"""In-process executor: the stages in a plain loop, one batch at a time (debugging, tests).

Gives the same trees as the Ray executor: both run the same stage objects on the same images,
and every stage treats each image on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..config import PipelineConfig
from ..io import ImageRef
from .stages import DecodeStage, FeatureStage, MergeStage, make_batch

__all__ = ["run_local"]


def run_local(
    refs: Sequence[ImageRef], config: PipelineConfig, patch_size: int, *, backbone: Any = None
) -> Iterator[dict[str, np.ndarray]]:
    """Yield merged batches (see :mod:`.stages` for the columns) of ``refs``, in input order.

    ``backbone`` reuses an already built backbone (else one is built from ``config``).
    """
    decode = DecodeStage(config, patch_size)
    features = FeatureStage(config, backbone=backbone)
    merge = MergeStage(config)
    bs = config.preprocess.batch_size
    for lo in range(0, len(refs), bs):
        chunk = refs[lo : lo + bs]
        batch = make_batch([r.image_id for r in chunk], [r.path for r in chunk])
        yield merge(features(decode(batch)))
