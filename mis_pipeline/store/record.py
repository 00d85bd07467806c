"""One image's entry in the tree store: its metadata and (when it succeeded) its merge tree."""

from __future__ import annotations

from dataclasses import dataclass

from ..merge.tree import MergeTree

__all__ = ["TreeRecord"]


@dataclass(frozen=True)
class TreeRecord:
    """Per-image record, as written by :class:`TreeWriter` and returned by :class:`TreeStore`.

    Attributes
    ----------
    image_id : str
        Path relative to the input root (posix separators) or the URL; unique in a store.
    source : str
        Full path or URL the image was read from.
    status : str
        ``"ok"``, ``"failed"`` or (only for rows a retry replaced) ``"superseded"``.
    reason : str
        Failure reason code (:attr:`mis_pipeline.errors.ImageError.reason` or an exception
        class name); ``""`` when ok.
    message : str
        Human-readable failure message; ``""`` when ok.
    backbone : str
        Feature backbone name.
    orig_hw, resized_hw : (int, int)
        ``(height, width)`` in pixels of the decoded image and of the image fed to the backbone;
        ``(0, 0)`` when not known.
    grid_hw : (int, int)
        ``(grid_h, grid_w)`` patch grid; ``(0, 0)`` when failed.
    tree : MergeTree or None
        The merge tree (``None`` when failed). Costs come back rounded to the store's precision.
    index : int
        Row of this record in the store's ``records/`` arrays (``-1`` before it is written).
    """

    image_id: str
    source: str
    status: str
    reason: str = ""
    message: str = ""
    backbone: str = ""
    orig_hw: tuple[int, int] = (0, 0)
    resized_hw: tuple[int, int] = (0, 0)
    grid_hw: tuple[int, int] = (0, 0)
    tree: MergeTree | None = None
    index: int = -1

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def n_leaves(self) -> int:
        return int(self.grid_hw[0]) * int(self.grid_hw[1]) if self.ok else 0

    @property
    def n_merges(self) -> int:
        return max(self.n_leaves - 1, 0)
