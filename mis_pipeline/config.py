"""Typed, frozen configuration: every default of the package lives here, once.

Each pipeline concept has one frozen dataclass section; :class:`PipelineConfig` groups them.
Values are validated when a dataclass is built, so a bad configuration fails before any work
starts with a :class:`~mis_pipeline.errors.ConfigError` that names the field, the value given
and what is allowed.

The library reads no YAML and no environment. The CLI and ``stages/`` turn YAML files and
``--set section.key=value`` flags into a nested ``dict`` and call :func:`from_dict`::

    cfg = from_dict(PipelineConfig, {"features": {"backbone": "colour_texture"}})
    cfg.features.batch_size          # -> 16, the default
    to_dict(cfg)                     # -> plain nested dict, written beside every output
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union, get_args, get_origin

from .errors import ConfigError

__all__ = [
    "spec",
    "from_dict",
    "to_dict",
    "set_path",
    "IOConfig",
    "FeatureConfig",
    "StoreConfig",
    "PreprocessConfig",
    "EvalConfig",
    "GraphCutConfig",
    "TreePredictorConfig",
    "PREDICTOR_NAMES",
    "PipelineConfig",
    "BACKBONE_NAMES",
    "ProposalConfig",
    "ClickConfig",
    "AugmentConfig",
    "DataConfig",
    "PROPOSAL_SAMPLERS",
    "TrainConfig",
    "TRAIN_MODES",
    "IclConfig",
    "CfrConfig",
    "TaizConfig",
    "VtmrConfig",
    "SuemConfig",
    "RefCutConfig",
    "ModelConfig",
    "LossConfig",
    "ModelPredictorConfig",
    "MODEL_ARCHS",
    "ZOOM_MODES",
]

# Names of the feature backbones (the registry in mis_pipeline.features must agree; a test checks).
BACKBONE_NAMES = (
    "dino_vits8",
    "dino_vits16",
    "dino_vitb8",
    "dino_vitb16",
    "dinov2_vits14",
    "colour_texture",
    "test_vit_tiny",
)


def spec(
    default: Any = dataclasses.MISSING,
    *,
    doc: str,
    choices: tuple[Any, ...] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with documentation and range/choice constraints checked on build."""
    meta = {"doc": doc, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- validation
def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return "a list of " + ", ".join(_type_name(a) for a in args)
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to type ``tp`` or raise ConfigError. Accepts YAML-ish input."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed and type(value) in {type(a) for a in allowed}:
            return value
        raise ConfigError(name, value, "one of " + ", ".join(repr(a) for a in allowed))
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(name, value, a)
            except ConfigError as exc:
                errors.append(exc)
        raise ConfigError(name, value, _type_name(tp))
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(name, value, _type_name(tp))
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{name}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(name, value, _type_name(tp))
        return tuple(_coerce(f"{name}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(name, value, "true or false")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(name, value, "an integer")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(name, value, "a number")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(name, value, "a string")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, Mapping):
            return _build(tp, value, name)
        raise ConfigError(name, value, f"a mapping of {tp.__name__} fields")
    raise TypeError(f"unsupported config annotation {tp!r} for {name}")  # programming error


def _check_constraints(name: str, value: Any, meta: Mapping[str, Any]) -> None:
    choices = meta.get("choices")
    if choices is not None and value is not None and value not in choices:
        raise ConfigError(name, value, "one of " + ", ".join(repr(c) for c in choices))
    if value is None or isinstance(value, (bool, str)) or not isinstance(value, (int, float, tuple)):
        return
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        for key, ok in (
            ("ge", lambda a, b: a >= b),
            ("gt", lambda a, b: a > b),
            ("le", lambda a, b: a <= b),
            ("lt", lambda a, b: a < b),
        ):
            bound = meta.get(key)
            if bound is not None and not ok(v, bound):
                parts = [f"{w} {meta[k]}" for k, w in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if meta.get(k) is not None]
                if isinstance(value, tuple):
                    allowed = "a value " + " and ".join(parts) + f" for every element; {v!r} is not"
                    raise ConfigError(name, list(value), allowed)
                raise ConfigError(name, value, "a value " + " and ".join(parts))


def _section_name(obj: Any) -> str:
    return getattr(type(obj), "_section", type(obj).__name__)


def validate(obj: Any, prefix: str | None = None) -> None:
    """Check every field of dataclass instance ``obj`` against its annotation and constraints.

    Called from ``__post_init__`` of every config section; fixes up YAML-ish values (lists to
    tuples, ints to floats) in place on the frozen instance.
    """
    prefix = _section_name(obj) if prefix is None else prefix
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        name = f"{prefix}.{f.name}" if prefix else f.name
        value = _coerce(name, getattr(obj, f.name), hints[f.name])
        _check_constraints(name, value, f.metadata)
        object.__setattr__(obj, f.name, value)


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, data, f"a mapping of {cls.__name__} fields")
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            where = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(where, data[key], "known keys: " + ", ".join(sorted(names)))
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        kwargs[key] = _coerce(name, value, hints[key])
    return cls(**kwargs)


def from_dict(cls: type, data: Mapping[str, Any] | None) -> Any:
    """Build config dataclass ``cls`` from a nested mapping of overrides.

    Unknown keys, wrong types and out-of-range values raise ConfigError naming the dotted field.
    """
    return _build(cls, dict(data or {}), "" if cls is PipelineConfig else getattr(cls, "_section", ""))


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain nested dict of a config (tuples become lists) for YAML/JSON output."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v

    return conv(obj)


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data[a][b] = value`` for ``dotted == "a.b"``, creating nested dicts as needed."""
    parts = dotted.split(".")
    if not dotted or any(not p for p in parts):
        raise ConfigError(dotted, value, "a dotted key such as 'features.batch_size'")
    cur = data
    for p in parts[:-1]:
        nxt = cur.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(dotted, value, f"'{p}' is a value, not a section")
        cur = nxt
    cur[parts[-1]] = value


def field_docs(cls: type) -> dict[str, str]:
    """``{field name: doc}`` of a config dataclass (used by the CLI help)."""
    return {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(cls)}


class _Section:
    _section: typing.ClassVar[str] = ""

    def __post_init__(self) -> None:
        validate(self)


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class IOConfig(_Section):
    """Image decoding, validation and the resize rule."""

    _section: typing.ClassVar[str] = "io"
    max_pixels: int = spec(
        89_478_485,
        doc="Reject images whose header declares more pixels than this (decompression-bomb guard).",
        ge=1,
    )
    max_side: Optional[int] = spec(
        None,
        doc="If set, downscale (keeping aspect) so the longer side is at most this many pixels "
        "before the stretch to a multiple of the patch size. None keeps the paper's rule.",
        ge=1,
    )


@dataclass(frozen=True)
class FeatureConfig(_Section):
    """Patch-feature backbone and how it runs."""

    _section: typing.ClassVar[str] = "features"
    backbone: str = spec("dino_vits8", doc="Feature backbone from the registry.", choices=BACKBONE_NAMES)
    weights: str = spec(
        "hub",
        doc="'hub' downloads the backbone's pretrained weights through timm; 'none' keeps random "
        "initialisation; otherwise a local checkpoint path (official DINO .pth, timm .pth/.bin "
        "or .safetensors).",
    )
    device: str = spec("auto", doc="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    batch_size: int = spec(16, doc="Images per forward pass (images are grouped by size).", ge=1)
    pos_embed: Literal["timm", "official"] = spec(
        "timm",
        doc="Position-embedding resize: 'timm' (resize to the target grid, antialiased) or "
        "'official' (DINO code: bicubic, scale_factor=(grid+0.1)/28, no antialias).",
    )
    amp: bool = spec(True, doc="bf16 autocast on CUDA (ignored on CPU).")
    patch_size: Optional[int] = spec(
        None,
        doc="Patch size in pixels for the weights-free 'colour_texture' backbone (None: 8). "
        "ViT backbones have a fixed patch size and accept only None or that size.",
        ge=2,
    )
    init_seed: int = spec(
        0, doc="Seed of the random initialisation used when weights='none' (tests, benchmarks).", ge=0
    )


@dataclass(frozen=True)
class StoreConfig(_Section):
    """Layout of the Zarr tree store."""

    _section: typing.ClassVar[str] = "store"
    cost_mantissa_bits: int = spec(
        10,
        doc="Mantissa bits kept of each float32 merge cost (float32 exponent kept, round to "
        "nearest): relative error <= 2^-(bits+1), i.e. 4.9e-4 for 10 (float16 precision without "
        "its overflow at 65504); 23 stores costs exactly.",
        ge=1,
        le=23,
    )
    records_per_chunk: int = spec(4096, doc="Per-image records per compressed chunk.", ge=1)
    records_per_shard: int = spec(
        16384, doc="Per-image records per shard file (a multiple of records_per_chunk).", ge=1
    )
    merges_per_chunk: int = spec(
        1 << 15, doc="Merges per compressed chunk (the unit a random read decompresses).", ge=256
    )
    merges_per_shard: int = spec(
        1 << 20, doc="Merges per shard file (a multiple of merges_per_chunk).", ge=256
    )
    compression_level: int = spec(
        8,
        doc="Compression level of all arrays, 1-9 on Blosc's scale (Blosc-Zstandard with byte "
        "shuffle; 8 is zstd level 15): 2.42 B/merge on the Weizmann horses against 2.54 at 5, "
        "compressing at ~130 MB/s; 9 (zstd 22) is no smaller and ten times slower to write.",
        ge=1,
        le=9,
    )


@dataclass(frozen=True)
class PreprocessConfig(_Section):
    """The corpus preprocessing run (images -> features -> trees -> store)."""

    _section: typing.ClassVar[str] = "preprocess"
    executor: Literal["ray", "local"] = spec(
        "ray", doc="'ray' (Ray tasks or Ray Data; a local instance or an existing cluster) or 'local' "
        "(in-process)."
    )
    ray_address: Optional[str] = spec(
        None, doc="Address of an existing Ray cluster ('auto', 'ray://host:10001'); None starts a local one."
    )
    batch_size: int = spec(
        32,
        doc="Images per pipeline batch and per atomic store commit (the Ray executor commits "
        "batches that finished together in one commit).",
        ge=1,
    )
    feature_actors: int = spec(1, doc="Number of feature actors (one GPU each when GPUs exist).", ge=1)
    gpus_per_actor: Optional[float] = spec(
        None, doc="GPUs per feature actor; None: 1 when the cluster has GPUs, else 0.", ge=0
    )
    feature_compute: Literal["auto", "actors", "tasks"] = spec(
        "auto",
        doc="How Ray runs the feature stage: 'actors' (Ray Data with a pool of feature_actors "
        "actors, GPUs each when present), 'tasks' (one Ray task per batch running decode, "
        "features and merge, the backbone built once per worker process), 'auto' (actors when "
        "the cluster has GPUs, else tasks).",
    )
    ray_min_local_s: Optional[float] = spec(
        None,
        doc="With no cluster to join (CPU features): this process first runs a warm-up and a timed "
        "batch itself and starts a local Ray only once its estimate of the remaining work exceeds "
        "this many seconds; below it the run stays in this process. None: where a local Ray pays "
        "off, 5 s x CPUs / (CPUs - 1) (10 s on 2 CPUs; never on 1). 0: start Ray at once. "
        "Needs driver_works.",
        ge=0,
    )
    driver_works: bool = spec(
        True,
        doc="While a local Ray starts and until its workers deliver their first batch, this process "
        "computes batches too (the same stages; identical trees). False: it only commits, and Ray "
        "is started at once.",
    )
    retry_failed: bool = spec(False, doc="Re-attempt images recorded as failed by an earlier run.")
    extensions: tuple[str, ...] = spec(
        (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"),
        doc="File extensions taken from an input directory (case-insensitive).",
    )


# Names of the evaluation predictors (the registry in mis_pipeline.evaluate.predictors must agree).
PREDICTOR_NAMES = ("tree", "graphcut", "oracle", "gt", "empty", "model")


@dataclass(frozen=True)
class GraphCutConfig(_Section):
    """The classical baseline: OpenCV GrabCut seeded from the clicks."""

    _section: typing.ClassVar[str] = "evaluate.graphcut"
    radius: int = spec(5, doc="Radius (px) of the click disks fixed as definite foreground/background.", ge=0)
    iterations: int = spec(3, doc="GrabCut iterations (GMM re-estimation + min-cut) per click.", ge=1)
    init: Literal["frame", "previous", "none"] = spec(
        "frame", doc="Unclicked pixels: 'frame' = a border frame probable background and the inside "
        "probable foreground (GrabCut's rectangle); 'previous' = the previous prediction probable "
        "foreground; 'none' = all probable background."
    )
    frame_margin: float = spec(0.05, doc="Width of the 'frame' as a fraction of each image side.", gt=0, lt=0.5)
    max_side: Optional[int] = spec(
        320, doc="Run GrabCut on a copy whose longer side is at most this (px; about 5x faster than "
        "full size on 640-px images); None: full resolution.", ge=16
    )


@dataclass(frozen=True)
class TreePredictorConfig(_Section):
    """The zero-training tree predictor (and the oracle's tree)."""

    _section: typing.ClassVar[str] = "evaluate.tree"
    backbone: str = spec(
        "colour_texture", doc="Feature backbone of the evaluated image's merge tree (weights and "
        "device from the features section).", choices=BACKBONE_NAMES
    )
    patch_size: Optional[int] = spec(
        None, doc="Fixed patch size for backbones that take one (colour_texture); None: chosen per "
        "image from target_leaves (colour_texture) or the backbone's own (ViTs).", ge=2
    )
    target_leaves: int = spec(
        8000, doc="With patch_size None and an adjustable-patch backbone (colour_texture): patch side "
        "round(sqrt(H*W/target_leaves)) per image (>= 2 px), so small and large images get trees of "
        "similar size.", ge=16
    )
    max_side: Optional[int] = spec(
        None, doc="Downscale images whose longer side exceeds this (px) before computing features.", ge=8
    )
    area_cost: float = spec(4.0, doc="MRF cost of foreground per unit of image area (prior against large answers).", ge=0)
    change_cost: float = spec(
        32.0, doc="MRF cost, per unit of image area, of changing the previous answer (from the second click on).", ge=0
    )
    cut_scale: float = spec(
        1.0, doc="Scale of the cut costs log(c_max / c_parent) of splitting a node from its sibling.", gt=0
    )
    refine: Literal["guided", "none"] = spec("guided", doc="Pixel-level refinement of the patch labelling.")
    guided_radius: int = spec(8, doc="Guided-filter window radius (px).", ge=1)
    guided_eps: float = spec(1e-3, doc="Guided-filter ridge weight (guide in [0, 1]).", gt=0)
    guided_subsample: int = spec(2, doc="Fast guided filter: coefficients computed at 1/this resolution.", ge=1)
    click_radius: int = spec(3, doc="Disks of this radius (px) around clicks take the clicks' labels.", ge=0)


#: Zoom strategies of the 'model' predictor (mis_pipeline.evaluate.predictors.model).
ZOOM_MODES = ("none", "simpleclick", "taiz")


@dataclass(frozen=True)
class ModelPredictorConfig(_Section):
    """The 'model' predictor: a trained SimpleClick checkpoint under SimpleClick's inference."""

    _section: typing.ClassVar[str] = "evaluate.model"
    checkpoint: Optional[str] = spec(
        None, doc="Training run folder (RUN) or its checkpoint/ folder; required by the 'model' predictor."
    )
    device: str = spec("auto", doc="'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    flip: bool = spec(True, doc="Average the logits with those of the horizontally flipped input (SimpleClick: on).")
    zoom: str = spec(
        "simpleclick", doc="'simpleclick': SimpleClick's zoom-in (crop around the current answer, resized "
        "to zoom_target_size); 'none': the whole image at its own size; 'taiz': VTMR's target-aware zoom "
        "(the whole image resized to zoom_target_size, then a Gaussian-warped pass blended in; section "
        "taiz).", choices=ZOOM_MODES,
    )
    zoom_target_size: Optional[int] = spec(
        None, doc="Side (px) the zoomed crop is resized to (a square, as SimpleClick's 'cvpr' mode); None: "
        "the model's training size model.img_size (448 = SimpleClick; it uses 672 on DAVIS).", ge=16,
    )
    zoom_expansion: float = spec(1.4, doc="The answer's bounding box is enlarged by this factor.", ge=1)
    zoom_min_crop: int = spec(200, doc="Smallest crop side (px) before clamping to the image.", ge=1)
    zoom_recompute_iou: float = spec(
        0.5, doc="A new crop is taken when the box IoU of the new and current crops falls below this.", ge=0, le=1
    )
    zoom_prob_threshold: float = spec(0.5, doc="Threshold of the previous answer that defines the crop.", gt=0, lt=1)
    zoom_skip_clicks: int = spec(
        -1, doc="Clicks answered on the whole image before zooming; -1 (SimpleClick) zooms from the first "
        "click, the first crop being the whole image.", ge=-1,
    )


@dataclass(frozen=True)
class EvalConfig(_Section):
    """The standard click protocol (RITM/SimpleClick)."""

    _section: typing.ClassVar[str] = "evaluate"
    max_clicks: int = spec(20, doc="Clicks per sample; NoC is this value when a target is never reached.", ge=1)
    pred_threshold: float = spec(0.49, doc="Probability threshold that binarises a prediction.", gt=0, lt=1)
    reference: str = spec(
        "none", doc="RefCut references for part datasets: 'auto' gives the predictor each sample's "
        "reference (image and masks from the next image, RefCut's rule; needs a model trained with "
        "train.mode 'refcut'), 'none' evaluates without.", choices=("none", "auto"),
    )
    iou_targets: tuple[float, ...] = spec(
        (0.80, 0.85, 0.90, 0.95), doc="IoU targets for NoC/NoF.", gt=0, le=1
    )
    workers: Optional[int] = spec(
        None, doc="Parallel worker processes; null: the usable CPU cores (results do not depend on it).", ge=1
    )
    predictor: str = spec("tree", doc="Predictor from the registry in mis_pipeline.evaluate.predictors.",
                          choices=PREDICTOR_NAMES)
    graphcut: GraphCutConfig = spec(default_factory=GraphCutConfig, doc="Settings of the 'graphcut' predictor.")
    tree: TreePredictorConfig = spec(
        default_factory=TreePredictorConfig, doc="Settings of the 'tree' predictor and the oracle's tree."
    )
    model: ModelPredictorConfig = spec(
        default_factory=ModelPredictorConfig, doc="Settings of the 'model' predictor."
    )


# --------------------------------------------------------------------------- training data
PROPOSAL_SAMPLERS = ("top_down", "root_children", "uniform")


@dataclass(frozen=True)
class ProposalConfig(_Section):
    """Which merge-tree node becomes a training proposal (MIS Algorithm 2 and its ablations)."""

    _section: typing.ClassVar[str] = "data.proposals"
    sampler: str = spec(
        "top_down",
        doc="'top_down' (MIS Algorithm 2: descend while rand() < p, p *= alpha), 'root_children' "
        "(the alpha = 0 ablation) or 'uniform' (every non-root node equally likely).",
        choices=PROPOSAL_SAMPLERS,
    )
    alpha: float = spec(0.9, doc="Decay of the descent probability per level (MIS: 0.9).", ge=0, le=1)
    min_area: float = spec(
        0.05, doc="Re-draw the whole descent until the node covers more than this fraction of the grid.",
        ge=0, lt=1,
    )
    max_tries: int = spec(100, doc="Draws before the last one is returned regardless of area.", ge=1)


@dataclass(frozen=True)
class ClickConfig(_Section):
    """Training-click simulation (RITM MultiPointSampler as MIS configures it).

    Reference: ``MultiPointSampler(24, prob_gamma=0.80, merge_objects_prob=0.15,
    max_num_merged_objects=2)`` with RITM's defaults for every other argument (merging never
    happens with a single proposal). Positives: 1..max_points, P(k) ~ gamma^(k-1); negatives:
    0..max_points, P(k) ~ gamma^k, each from a strategy drawn with ``negative_probs``.
    """

    _section: typing.ClassVar[str] = "data.clicks"
    max_points: int = spec(24, doc="Maximum positive (and negative) points per sample.", ge=1)
    prob_gamma: float = spec(
        0.8, doc="Geometric law of the number of points: P(k) ~ gamma^(k-1) for 1..max_points "
        "positives, gamma^k for 0..max_points negatives.", gt=0, lt=1)
    positive_erode_prob: float = spec(0.9, doc="Probability of eroding the mask before drawing positives.", ge=0, le=1)
    positive_erode_iters: int = spec(
        3, doc="Erosion iterations with a 3x3 kernel (pixels outside the image count as mask, as "
        "in OpenCV's default border).", ge=0)
    positive_erode_min_area: int = spec(
        10, doc="The eroded mask is used only if more than this many pixels survive.", ge=0)
    negative_probs: tuple[float, float, float] = spec(
        (0.1, 0.4, 0.5), doc="Probabilities of the negative strategies (background, other, border); sum 1.", ge=0, le=1
    )
    expand_ratio: float = spec(
        0.1, doc="Border strategy: the ring of the mask dilated by ceil(expand_ratio * sqrt(area)) "
        "iterations of a 3x3 kernel, minus the mask.", ge=0)
    other_source: Literal["background", "tree"] = spec(
        "background",
        doc="'other' negatives when there is one proposal: 'background' (the reference code) or "
        "'tree' (the proposal's sibling and cousin nodes in the merge tree).",
    )
    first_click_center: bool = spec(
        False, doc="Draw the first positive from the mask's inner region (RITM first_click_center; "
        "off in MIS).")
    first_click_inner_k: float = spec(
        1.7, doc="Inner region of the first click: distance to the border > max distance / k; "
        "k <= 0 draws one pixel with probability proportional to the distance (RITM sfc_inner_k).")
    first_click_full_prob: float = spec(
        0.0, doc="Probability that the first click ignores the inner region (RITM sfc_full_inner_prob).",
        ge=0, le=1)
    radius: int = spec(5, doc="Radius (px) of the click disks in the click maps.", ge=0)
    min_object_area: int = spec(
        80, doc="Proposals smaller than this (px, after augmentation) are re-drawn. (The reference "
        "removes them instead and trains on an empty target with negative clicks only, what "
        "sample_clicks gives for an empty mask.)", ge=0)
    next_click_threshold: float = spec(
        0.49, doc="Iterative training: probability threshold of the error regions (RITM 0.49).",
        gt=0, lt=1)
    next_click_distance: Literal["chamfer", "exact"] = spec(
        "chamfer", doc="Iterative training: distance transform of the error regions, 'chamfer' "
        "(OpenCV DIST_L2 with a 5x5 mask, the reference) or 'exact' (Euclidean).")

    def __post_init__(self) -> None:
        super().__post_init__()
        if abs(sum(self.negative_probs) - 1.0) > 1e-6:
            raise ConfigError(
                "data.clicks.negative_probs", list(self.negative_probs),
                "three probabilities (background, other, border) summing to 1",
            )


@dataclass(frozen=True)
class AugmentConfig(_Section):
    """Augmentation of the MIS SBD setting (image and mask together)."""

    _section: typing.ClassVar[str] = "data.augment"
    crop_size: int = spec(448, doc="Side of the square training crop (px).", ge=16)
    scale_range: tuple[float, float] = spec((0.75, 1.25), doc="UniformRandomResize scale range.", gt=0)
    hflip: bool = spec(True, doc="Random horizontal flip.")
    rotate90: bool = spec(True, doc="RandomRotate90.")
    shift_limit: float = spec(0.03, doc="ShiftScaleRotate shift limit (fraction of the side).", ge=0)
    rotate_limit: float = spec(3.0, doc="ShiftScaleRotate rotation limit (degrees).", ge=0)
    ssr_prob: float = spec(0.75, doc="Probability of ShiftScaleRotate.", ge=0, le=1)
    brightness_contrast_prob: float = spec(0.75, doc="Probability of RandomBrightnessContrast.", ge=0, le=1)
    brightness_limit: tuple[float, float] = spec(
        (-0.25, 0.25), doc="RandomBrightnessContrast brightness range (fraction of 255).", ge=-1, le=1)
    contrast_limit: tuple[float, float] = spec(
        (-0.15, 0.4), doc="RandomBrightnessContrast contrast range (factor - 1).", ge=-1, le=10)
    rgb_shift: int = spec(10, doc="RGBShift limit per channel.", ge=0)
    rgb_shift_prob: float = spec(0.75, doc="Probability of RGBShift.", ge=0, le=1)


@dataclass(frozen=True)
class DataConfig(_Section):
    """The streamed training dataset."""

    _section: typing.ClassVar[str] = "data"
    epoch_size: int = spec(30000, doc="Samples per epoch.", ge=1)
    max_redraws: int = spec(10, doc="Re-draws (next sub-seed) when a proposal vanishes under augmentation.", ge=0)
    loader_workers: int = spec(2, doc="DataLoader worker processes (single-process training).", ge=0)
    image_root: Optional[str] = spec(
        None, doc="Folder joined with each record's image_id, for stores made on another machine.")
    tree_cache: int = spec(
        1024, doc="Decoded merge trees (with their index) kept per process, LRU; 0: none. About "
        "0.18 MB per tree on a 56x56 grid, 0.9 MB on 128x128.", ge=0)
    decoder: Literal["pil", "cv2"] = spec(
        "pil", doc="Image decoder of training samples: 'pil' (the preprocessing's own decoder, every "
        "pixel mode, alpha composited on black) or 'cv2' (OpenCV: 0.48x the decode time on GrabCut's "
        "JPEG/BMP, 0.77x on PNG, same pixels on those files; alpha dropped, 16-bit >> 8; URLs and "
        "files OpenCV cannot read go through 'pil').")
    data_ratio: float = spec(
        1.0, doc="Annotated (fine-tuning) data: fraction of the samples used, a seeded subset.", gt=0, le=1)
    proposals: ProposalConfig = spec(default_factory=ProposalConfig, doc="Proposal sampling.")
    clicks: ClickConfig = spec(default_factory=ClickConfig, doc="Click simulation.")
    augment: AugmentConfig = spec(default_factory=AugmentConfig, doc="Augmentation.")


# --------------------------------------------------------------------------- issue 16 methods
@dataclass(frozen=True)
class IclConfig(_Section):
    """Iterative Click Loss of CFR-ICL (Sun et al., eq. 3)."""

    _section: typing.ClassVar[str] = "icl"
    steps: int = spec(3, doc="Click steps that carry gradient (CFR-ICL trains with 3).", ge=1)
    weights: tuple[float, ...] = spec(
        (1.0, 2.0, 3.0), doc="beta_i of eq. 3, one per gradient-carrying step (CFR-ICL: 1, 2, 3).", ge=0
    )
    random_steps: bool = spec(
        True,
        doc="Draw the number of steps uniformly in 1..steps per batch (the public code's "
        "random.randint(1, max_num_next_clicks)); false always runs 'steps' steps.",
    )
    paper_indexing: bool = spec(
        False,
        doc="Eq. 3 literally: the first output Y^0 (zero initial mask) gets no loss term and no "
        "gradient, the next 'steps' outputs get beta_1.. . False follows the public code, where "
        "Y^0 carries beta_1.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.weights) < self.steps:
            raise ConfigError("icl.weights", self.weights, f"at least icl.steps = {self.steps} weights")


@dataclass(frozen=True)
class CfrConfig(_Section):
    """Cascade-Forward Refinement at inference (CFR-ICL eqs. 4-5)."""

    _section: typing.ClassVar[str] = "cfr"
    steps: int = spec(0, doc="Refinement forwards n after the coarse one (0 = the plain predictor).", ge=0)
    adaptive: bool = spec(False, doc="A-CFR: stop early when the mask changes by few pixels.")
    threshold: int = spec(
        20, doc="A-CFR stops when at most this many pixels change between Y_i and Y_(i-1) (paper: 20).", ge=0
    )
    max_clicks: Optional[int] = spec(
        None,
        doc="Refine only while the number of clicks is at most this (the public code's "
        "--cf-click, default 1 there); None refines after every click as eqs. 4-5 state.",
        ge=1,
    )
    prob_threshold: float = spec(0.49, doc="Threshold that binarises masks to count changed pixels.", gt=0, lt=1)


@dataclass(frozen=True)
class TaizConfig(_Section):
    """Target-aware image zooming of VTMR (eqs. 4-5 and the blending schedule)."""

    _section: typing.ClassVar[str] = "taiz"
    sigma: float = spec(11.0, doc="Standard deviation of the Gaussian kernel, in output-grid pixels (VTMR: 11).",
                        gt=0)
    floor: float = spec(
        0.05,
        doc="Added to the guidance map (as a fraction of its mean) so the warp stays strictly "
        "monotone and invertible; the paper leaves this open.", ge=0,
    )
    max_clicks: Optional[int] = spec(
        None, doc="T of the schedule lambda_t; None: the protocol's click budget evaluate.max_clicks (VTMR: 20).",
        ge=1,
    )
    prob_threshold: float = spec(0.5, doc="Threshold of the coarse prediction M_2 (logit 0).", gt=0, lt=1)
    train_prob: float = spec(
        0.0, doc="Training: warp this fraction of the samples with the target mask as guidance (VTMR "
        "distorts half of its training images: 0.5); 0 leaves training unchanged.", ge=0, le=1,
    )


@dataclass(frozen=True)
class VtmrConfig(_Section):
    """Mask-matching regularisation of VTMR (eqs. 1 and 3)."""

    _section: typing.ClassVar[str] = "vtmr"
    enabled: bool = spec(False, doc="Add the mask-matching term to the training loss.")
    weight: float = spec(1.0, doc="Weight of L_mr in eq. 3 (the paper uses 1).", ge=0)
    confidence: float = spec(0.9, doc="Pixels with sigma(O_1,1) above this enter eq. 1.", gt=0, lt=1)
    iou_gate: float = spec(0.8, doc="alpha of eq. 3: L_mr counts only when IoU(M_0,1, G) exceeds it.", ge=0, le=1)
    max_extra_steps: int = spec(3, doc="K of the restart, drawn uniformly from 0..this (paper: 3).", ge=0)
    iou_tolerance: float = spec(0.02, doc="The perturbed mask's IoU lands within this of the target.", gt=0, lt=1)
    max_perturb_iters: int = spec(400, doc="Perturbation operations tried before giving up.", ge=1)


@dataclass(frozen=True)
class SuemConfig(_Section):
    """SUEM copy-paste augmentation of CFR-ICL (probabilities of its public code)."""

    _section: typing.ClassVar[str] = "suem"
    enabled: bool = spec(False, doc="Apply SUEM copy-paste to supervised fine-tuning samples.")
    copy_paste_prob: float = spec(
        0.5, doc="Probability of the simple C&P, and independently of pasting an extra object "
        "(union / exclusion / alpha, one of three uniformly); the public code uses 0.5.", ge=0, le=1,
    )
    image_mix_prob: float = spec(0.5, doc="Probability of blending the whole image with another.", ge=0, le=1)
    alpha_range: tuple[float, float] = spec((0.5, 1.0), doc="Blend weight of the kept image.", ge=0, le=1)
    min_visible: int = spec(
        20, doc="An extra object that leaves at most this many source pixels visible is re-drawn.", ge=0
    )
    max_tries: int = spec(5, doc="Extra objects tried for the union/exclusion/alpha paste.", ge=1)


@dataclass(frozen=True)
class RefCutConfig(_Section):
    """RefCut reference branch and part-pair sampling."""

    _section: typing.ClassVar[str] = "refcut"
    positive_only_prob: float = spec(0.25, doc="Training samples with only the positive reference mask.",
                                     ge=0, le=1)
    negative_only_prob: float = spec(0.25, doc="Training samples with only the negative reference mask.",
                                     ge=0, le=1)
    mask_resize: Literal["area", "nearest"] = spec(
        "area",
        doc="How reference masks are resized to the token grid: 'area' (fraction of each patch "
        "covered, a soft weight) or 'nearest'. The paper only says 'resized'.",
    )
    hidden_ratio: float = spec(1.0, doc="Hidden width of the two-layer prompt MLPs, as a multiple of D.", gt=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.positive_only_prob + self.negative_only_prob > 1:
            raise ConfigError(
                "refcut.negative_only_prob", self.negative_only_prob,
                f"at most 1 - refcut.positive_only_prob = {1 - self.positive_only_prob}",
            )


TRAIN_MODES = ("mis", "finetune", "refcut")


@dataclass(frozen=True)
class TrainConfig(_Section):
    """The trainer: RITM iterative training with SimpleClick's optimiser settings.

    Batches are global: ``batch_size`` samples per optimizer step over all workers, split into
    ``micro_batches`` equal micro-batches shared out among the workers (each worker accumulates
    the gradients of its share), so a run gives the same numbers at every worker count that
    divides ``micro_batches`` (up to the order of float reductions).
    """

    _section: typing.ClassVar[str] = "train"
    mode: str = spec(
        "mis", doc="'mis' (unsupervised, proposals from a tree store, MIS loss), 'finetune' "
        "(supervised, annotated masks, normalised focal loss) or 'refcut' (RefCut reference pairs "
        "from part labels or mined from tree stores, normalised focal loss).", choices=TRAIN_MODES,
    )
    loss: str = spec(
        "mode", doc="'mode': the mode's loss on one trained forward (RITM); 'icl': CFR-ICL's Iterative "
        "Click Loss over icl.steps gradient-carrying click steps (section icl).", choices=("mode", "icl"),
    )
    batch_size: int = spec(32, doc="Samples per optimizer step over all workers (MIS: 32).", ge=1)
    micro_batches: Optional[int] = spec(
        None, doc="Micro-batches per optimizer step over all workers (each worker accumulates the "
        "gradients of micro_batches / workers of them); batch_size must be a multiple of it and it a "
        "multiple of workers. Fix it (e.g. 8) to get the same numbers with 1, 2, 4 or 8 workers; "
        "None: one per worker.", ge=1,
    )
    epochs: float = spec(55, doc="Run length in epochs of data.epoch_size samples (MIS: 55).", gt=0)
    steps: Optional[int] = spec(
        None, doc="Run length in optimizer steps; overrides epochs, and the lr milestones are "
        "scaled to keep their fraction of the run.", ge=1,
    )
    lr: float = spec(5e-5, doc="Adam learning rate (MIS, SimpleClick: 5e-5).", gt=0)
    betas: tuple[float, float] = spec((0.9, 0.999), doc="Adam betas.", ge=0, lt=1)
    eps: float = spec(1e-8, doc="Adam epsilon.", gt=0)
    weight_decay: float = spec(0.0, doc="Adam (L2) weight decay.", ge=0)
    milestones: tuple[float, ...] = spec(
        (50.0,), doc="Epochs at which the lr is multiplied by lr_gamma (MIS: x0.1 at epoch 50).", ge=0
    )
    lr_gamma: float = spec(0.1, doc="Multiplicative lr decay at each milestone.", gt=0, le=1)
    max_num_next_clicks: int = spec(
        3, doc="Iterative training: 0..this many click rounds without gradient (uniform per "
        "step, model in eval mode) before the trained forward (RITM/SimpleClick: 3).", ge=0,
    )
    prev_mask_drop_prob: float = spec(
        0.0, doc="Probability of zeroing a sample's fed-back mask after the no-grad rounds "
        "(RITM option; 0 in SimpleClick and MIS).", ge=0, le=1,
    )
    amp: bool = spec(True, doc="bf16 autocast on CUDA (ignored on CPU).")
    device: str = spec("auto", doc="'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'.")
    workers: int = spec(
        1, doc="Training processes: 1 = a plain loop in this process; N > 1 = Ray Train "
        "TorchTrainer with N workers (one GPU each when present).", ge=1,
    )
    ray_address: Optional[str] = spec(
        None, doc="Ray cluster for workers > 1 ('auto', 'ray://host:10001'); None: $RAY_ADDRESS "
        "or a local Ray.",
    )
    ray_data: bool = spec(
        True, doc="With workers > 1, each worker reads its share of every batch from a Ray Data "
        "stream (False: a DataLoader in the worker).",
    )
    log_every: int = spec(10, doc="Optimizer steps between metrics.jsonl lines.", ge=1)
    checkpoint_every: int = spec(
        500, doc="Optimizer steps between checkpoints and resume states (and at the end).", ge=1
    )
    max_minutes: Optional[float] = spec(
        None, doc="Time budget of this process (minutes of wall time): after the step that exceeds "
        "it, save checkpoint and state and stop; rerunning continues the run. None: no budget.", gt=0,
    )
    init: Optional[str] = spec(
        None, doc="Checkpoint (RUN or checkpoint/ folder) to start from; required by finetune.",
    )


# --------------------------------------------------------------------------- model and loss
#: Architectures of mis_pipeline.model (the registry there must agree; a test checks).
MODEL_ARCHS = ("vit_base", "vit_large", "vit_huge", "vit_xtiny", "vit_tiny", "vit_test")


@dataclass(frozen=True)
class ModelConfig(_Section):
    """The SimpleClick interactive segmentation model (DESIGN.md "Model"); see mis_pipeline.model."""

    _section: typing.ClassVar[str] = "model"
    arch: str = spec(
        "vit_base", doc="Backbone and neck/head widths: vit_base (ViT-B/16, the MIS/SimpleClick paper "
        "setting), vit_large, vit_huge (ViT-H/14), vit_xtiny (SimpleClick's xtiny), vit_tiny (CPU runs), "
        "vit_test (unit tests).", choices=MODEL_ARCHS,
    )
    img_size: int = spec(
        448, doc="Training input side (px). The position table has img_size/patch cells per side; "
        "other input sizes interpolate it (bicubic, as SimpleClick at inference).", ge=16,
    )
    init: str = spec(
        "mae", doc="'mae': timm's MAE weights of the arch (download, e.g. vit_base_patch16_224.mae); "
        "'random': random initialisation seeded by init_seed (explicit, never a fallback); anything "
        "else: a local ViT checkpoint file (.pth/.bin read with weights_only, or .safetensors; timm "
        "or MAE names), its position table interpolated to img_size.",
    )
    init_seed: int = spec(0, doc="Seed of the random initialisation of every layer not loaded from init.", ge=0)
    window: int = spec(
        224, doc="Side (px) of the non-overlapping attention windows of the non-global blocks "
        "(SimpleClick: 224, the MAE pre-training size; global attention in the last block of each "
        "group of depth/4 blocks, 6 for ViT-B); 0: global attention in every block.", ge=0,
    )
    click_radius: int = spec(5, doc="Radius (px) of the click disks in the click maps (SimpleClick, MIS: 5).", ge=0)
    head_dropout: float = spec(0.1, doc="Dropout before the head's last 1x1 convolution (SimpleClick: 0.1).",
                               ge=0, lt=1)
    reference: bool = spec(
        False, doc="RefCut reference branch: the two prompt MLPs of eq. 7 (mis_pipeline.refcut), "
        "set by train.mode 'refcut'.",
    )


@dataclass(frozen=True)
class LossConfig(_Section):
    """Training losses: the MIS objective (eqs. 6-8) and the normalised focal loss; see mis_pipeline.losses."""

    _section: typing.ClassVar[str] = "loss"
    smooth_weight: float = spec(10.0, doc="lambda of MIS eq. 8 (MIS: 10).", ge=0)
    reference_code: bool = spec(
        False, doc="Use the public MIS code's smoothness term instead of the paper's (3x3 neighbours "
        "at 2 px, the transposed YUV matrix, replicated borders, on logits, its constants); the "
        "smooth_* and sigma_* fields below are then not used.",
    )
    smooth_kernel: int = spec(5, doc="Side of the square neighbourhood N_i (MIS paper: 5, i.e. 24 neighbours).", ge=3)
    smooth_dilation: int = spec(1, doc="Spacing (px) of the neighbours (1: the full window).", ge=1)
    sigma_xy: float = spec(4.0, doc="sigma_xy of the bilateral affinity, px (public code: sigma^2 = 16).", gt=0)
    sigma_l: float = spec(4.0, doc="sigma_l (luma, 0-255 scale; public code: sigma^2 = 16).", gt=0)
    sigma_uv: float = spec(
        2.8284271247461903, doc="sigma_uv (chroma, 0-255 scale; public code: sigma^2 = 8).", gt=0
    )
    smooth_on: Literal["probs", "logits"] = spec(
        "probs", doc="What Q of eq. 7 is: 'probs' (the paper: Q in [0, 1]) or 'logits' (the public code)."
    )
    nfl_alpha: float = spec(0.5, doc="alpha of the normalised focal loss (SimpleClick: 0.5).", ge=0, le=1)
    nfl_gamma: float = spec(2.0, doc="gamma of the normalised focal loss (SimpleClick: 2).", ge=0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.smooth_kernel % 2 != 1:
            raise ConfigError("loss.smooth_kernel", self.smooth_kernel, "an odd integer >= 3")


@dataclass(frozen=True)
class PipelineConfig:
    """Every section of the configuration; the unit written beside each output."""

    io: IOConfig = field(default_factory=IOConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    icl: IclConfig = field(default_factory=IclConfig)
    cfr: CfrConfig = field(default_factory=CfrConfig)
    taiz: TaizConfig = field(default_factory=TaizConfig)
    vtmr: VtmrConfig = field(default_factory=VtmrConfig)
    suem: SuemConfig = field(default_factory=SuemConfig)
    refcut: RefCutConfig = field(default_factory=RefCutConfig)
    seed: int = spec(0, doc="Base seed; per-sample generators derive from (seed, index, epoch).", ge=0)

    def __post_init__(self) -> None:
        validate(self, prefix="")
