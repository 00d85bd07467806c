"""Which configuration fields can change a tree: the store's fingerprint.

A store holds trees made with one setting only. Its *tree settings* are every field of the
configuration sections that take part in making a tree (:data:`TREE_SECTIONS`: image decoding
and the resize rule, the feature backbone, the merge, the store's codecs) except the few listed
in :data:`NOT_TREE_AFFECTING`, each with the reason it cannot change a tree. The list of what
counts is therefore derived from the dataclasses, not kept by hand: a field added to one of
those sections counts from the day it is added, until someone argues otherwise in
:data:`NOT_TREE_AFFECTING` (a test walks every field and checks one or the other).

The merge (:func:`mis_pipeline.merge.ward_grid`) has no settings today, so the configuration
has no ``merge`` section; when one is added it is part of the settings without further change.

Resuming a store compares the settings recorded in its attributes (``config``, the source of
truth) with those of the new run; :func:`tree_fingerprint` is a short hash of the settings,
recorded in the attributes of a new store (``tree_fingerprint``) to tell stores apart.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..config import PipelineConfig, to_dict

__all__ = [
    "TREE_SECTIONS",
    "NOT_TREE_AFFECTING",
    "tree_settings",
    "tree_fingerprint",
    "settings_diff",
]

#: Configuration sections whose fields make a tree (those present on PipelineConfig are used).
TREE_SECTIONS: tuple[str, ...] = ("io", "features", "merge", "store")

#: Fields of :data:`TREE_SECTIONS` that cannot change a stored tree, with the reason.
NOT_TREE_AFFECTING: dict[str, str] = {
    "io.max_pixels": (
        "a decompression-bomb guard: it decides whether an image is refused (recorded as "
        "failed), never how a stored image's tree is computed"
    ),
    "features.device": (
        "where the backbone runs, not what it computes; a store may be resumed on another "
        "machine (results across devices agree up to float rounding)"
    ),
    "features.batch_size": (
        "how many images share a forward pass; each image's features are computed from that "
        "image alone (images are grouped by size, never padded)"
    ),
}


def _section_fields(section: str) -> list[dataclasses.Field[Any]] | None:
    """Fields of the dataclass of top-level ``section`` of PipelineConfig, or None if absent."""
    for f in dataclasses.fields(PipelineConfig):
        if f.name == section:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            return list(dataclasses.fields(default))
    return None


def _plain(value: Any) -> Any:
    """JSON-comparable form (tuples as lists, as in the stored attributes)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def tree_settings(config: PipelineConfig | Mapping[str, Any]) -> dict[str, Any]:
    """``{"section.field": value}`` of every tree-affecting field, sorted by key.

    ``config`` is a :class:`PipelineConfig` or the nested dict a store records (its
    ``config`` attribute); a field missing from such a dict (a store written before the field
    existed) takes the field's default, the value that store was made with.
    """
    data = to_dict(config) if isinstance(config, PipelineConfig) else dict(config)
    defaults = to_dict(PipelineConfig())
    out: dict[str, Any] = {}
    for section in TREE_SECTIONS:
        fields = _section_fields(section)
        if fields is None:
            continue
        given = data.get(section) or {}
        for f in fields:
            key = f"{section}.{f.name}"
            if key in NOT_TREE_AFFECTING:
                continue
            out[key] = _plain(given.get(f.name, defaults[section][f.name]))
    return dict(sorted(out.items()))


def tree_fingerprint(config: PipelineConfig | Mapping[str, Any]) -> str:
    """SHA-256 (hex, first 16 digits) of :func:`tree_settings` as canonical JSON."""
    blob = json.dumps(tree_settings(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def settings_diff(
    old: PipelineConfig | Mapping[str, Any], new: PipelineConfig | Mapping[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """``{"section.field": (old value, new value)}`` of the tree settings that differ."""
    a, b = tree_settings(old), tree_settings(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
