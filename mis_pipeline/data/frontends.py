"""The two front ends over ``sample(index, epoch)``: a torch Dataset and a Ray Data dataset.

Both call the same function, so a sample is bit-identical whichever front end (and whichever
worker) computed it. Batches stack the samples as they are (DESIGN.md "Training sample"):

==============  ======================  ===================================================
key             batch shape, dtype      meaning
==============  ======================  ===================================================
``image``       (B, H, W, 3) uint8      RGB crops; the model side converts and normalises
``mask``        (B, H, W) bool          proposal (or annotation)
``points``      (B, K, 2) int32         clicks as (row, col) in crop pixels
``labels``      (B, K) int8             1 positive, 0 negative
``valid``       (B, K) bool             which of the K slots hold a click
``image_index`` (B,) int64              store (or annotated-dataset) index of the image
``node``        (B,) int64              merge-tree node (annotation id for annotated data)
``index``       (B,) int64              sample index in the epoch
``epoch``       (B,) int64              epoch
==============  ======================  ===================================================

Click disk maps are not part of a sample: the model builds them on the batch's device
(:func:`mis_pipeline.clicks.click_maps_torch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["TorchSampleDataset", "collate", "stack_samples", "to_ray"]


def stack_samples(samples: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Stack sample dicts key by key into numpy batch arrays (shapes in the module doc)."""
    if not samples:
        raise ValueError("cannot stack an empty list of samples")
    keys = list(samples[0])
    return {k: np.stack([np.asarray(s[k]) for s in samples]) for k in keys}


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``collate_fn`` for a ``torch.utils.data.DataLoader``: a dict of CPU torch tensors with
    the shapes and dtypes of the module doc (uint8 images, bool masks, int32 points)."""
    import torch

    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in stack_samples(samples).items()}


def _torch_dataset_base() -> type:
    from torch.utils.data import Dataset

    return Dataset


class TorchSampleDataset(_torch_dataset_base()):  # type: ignore[misc]
    """``torch.utils.data.Dataset`` view of a sample source at one epoch.

    ``len`` is the epoch size, ``ds[i]`` is ``source.sample(i, epoch)``; call
    :meth:`set_epoch` before each epoch. The epoch's order is already a seeded permutation of
    the images: iterate it in order (``shuffle=False``), which also keeps the per-process cache
    of that permutation warm. With worker processes, set the epoch *before* the
    DataLoader's iterator is created (workers get a copy of this object when each epoch's
    iterator starts, unless ``persistent_workers=True``, where the copy is made once and
    ``set_epoch`` does not reach them: create a new DataLoader per epoch in that case).
    """

    def __init__(self, source: Any, epoch: int = 0) -> None:
        self.source = source
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.source.sample(int(index), self.epoch)


# Per-process cache of sample sources inside Ray workers, keyed by the source's token: the
# source (its image table can be large) is fetched from the object store and unpickled once
# per worker process, not once per map task, and its tree cache lives across tasks.
_RAY_SOURCES: dict[str, Any] = {}


def _ray_batch(batch: dict[str, np.ndarray], source_ref: list[Any], token: str, epoch: int) -> dict[str, np.ndarray]:
    source = _RAY_SOURCES.get(token)
    if source is None:
        import ray

        source = _RAY_SOURCES[token] = ray.get(source_ref[0])
    return stack_samples([source.sample(int(i), epoch) for i in batch["id"]])


def to_ray(source: Any, epoch: int = 0, *, batch_size: int = 16, **map_kwargs: Any) -> Any:
    """A ``ray.data.Dataset`` of the ``len(source)`` samples of ``epoch``.

    Built as ``ray.data.range(len(source)).map_batches(...)`` (CPU tasks; pass e.g.
    ``concurrency=2`` or ``num_cpus=1`` through ``map_kwargs``). Rows carry the keys of the
    module doc; ``ds.iter_torch_batches(batch_size=B)`` yields dicts of torch tensors, as does
    :func:`collate`. Row order follows Ray's execution: use the ``index`` key, not the
    position, to identify a sample. Ray must be initialised by the caller (or is started
    locally by Ray on first use).
    """
    import ray

    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    import uuid

    n = len(source)
    token = getattr(source, "token", None) or uuid.uuid4().hex
    ref = ray.put(source)  # one copy in the object store; each worker process unpickles it once
    ds = ray.data.range(n, override_num_blocks=max(1, min(-(-n // batch_size), 200)))
    return ds.map_batches(
        _ray_batch,
        fn_kwargs={"source_ref": [ref], "token": token, "epoch": int(epoch)},
        batch_size=batch_size,
        batch_format="numpy",
        **map_kwargs,
    )
