"""ViT patch features through timm: the DINO / DINOv2 backbones and a tiny test ViT.

Output per image: the last block's tokens after the final LayerNorm, prefix tokens (class,
registers) dropped, as a ``(grid_h, grid_w, C)`` float32 array, no L2 normalisation
(the MIS reference, DESIGN.md). They come from timm's documented
``forward_intermediates(indices=1, norm=True)``, or from
:func:`~mis_pipeline.features.pos_embed.forward_official` when
``FeatureConfig.pos_embed == "official"``.

Images are normalised with the model's mean/std (ImageNet for every DINO model), grouped by
size into batches of at most ``batch_size``, and run under ``torch.inference_mode`` (bf16
autocast on CUDA when ``amp``). Model construction and weight loading happen once, in
``__init__``.

Weights (``FeatureConfig.weights``): ``"hub"`` is timm's ``pretrained=True`` download,
``"none"`` a random initialisation seeded by ``init_seed`` (the global torch generator is
left as it was), anything else a local checkpoint file (see :mod:`.weights`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..config import FeatureConfig
from ..errors import ConfigError, DependencyError, WeightsError
from .registry import BackboneBase, check_patch_images, register_backbone

__all__ = ["ViTBackbone", "resolve_device", "TEST_VIT_TINY_ARCH"]

logger = logging.getLogger(__name__)

#: Architecture of ``test_vit_tiny``: patch 8, width 32, 2 blocks, 2 heads, 8x8 training grid.
TEST_VIT_TINY_ARCH: dict[str, Any] = dict(
    img_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0
)


def _import_torch_timm() -> tuple[Any, Any]:
    try:
        import torch
    except ImportError as exc:
        raise DependencyError("torch", "ViT feature backbones") from exc
    try:
        import timm
    except ImportError as exc:
        raise DependencyError("timm", "ViT feature backbones") from exc
    return torch, timm


def resolve_device(spec: str) -> Any:
    """``"auto"`` -> CUDA if available, else MPS, else CPU; or an explicit device string.

    Raises :class:`ConfigError` for an unknown string or a device this machine lacks.
    """
    import torch

    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError("features.device", spec, allowed) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("features.device", spec, allowed + "; CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                "features.device", spec, f"cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("features.device", spec, allowed + "; MPS is not available here")
    elif dev.type != "cpu":
        raise ConfigError("features.device", spec, allowed)
    return dev


class ViTBackbone(BackboneBase):
    """A timm VisionTransformer as a patch-feature backbone.

    Parameters
    ----------
    name : str
        Registry name.
    cfg : FeatureConfig
        Weights, device, batch size, position-embedding mode, amp, init seed.
    timm_name : str, optional
        timm model name with pretrained tag (``"vit_small_patch8_224.dino"``).
    arch : dict, optional
        Instead of ``timm_name``: keyword arguments of timm's ``VisionTransformer`` (a model
        with no pretrained weights, e.g. ``test_vit_tiny``).

    Attributes
    ----------
    model : timm VisionTransformer
        In eval mode, on :attr:`device`, gradients off.
    device : torch.device
    """

    def __init__(
        self,
        name: str,
        cfg: FeatureConfig,
        *,
        timm_name: str | None = None,
        arch: dict[str, Any] | None = None,
    ) -> None:
        torch, timm = _import_torch_timm()
        if (timm_name is None) == (arch is None):
            raise TypeError("give exactly one of timm_name and arch")
        self.name = name
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        pretrained = cfg.weights == "hub"
        if pretrained and timm_name is None:
            raise WeightsError(
                f"backbone {name!r} has no pretrained weights; use weights='none' or a local file"
            )
        # Random initialisation draws from torch's global generator: seed a forked copy so
        # the result depends on init_seed only and the caller's generator state is kept.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.init_seed)
            if timm_name is not None:
                extra: dict[str, Any] = {}
                if pretrained:
                    # Cache first, else one hub check and one download (fails fast offline);
                    # timm then loads that file instead of retrying the hub itself.
                    from .weights import hub_weights_file

                    local = hub_weights_file(timm_name)
                    if local is not None:
                        extra["pretrained_cfg_overlay"] = {"file": local}
                try:
                    model = timm.create_model(
                        timm_name,
                        pretrained=pretrained,
                        num_classes=0,
                        dynamic_img_size=True,
                        **extra,
                    )
                except Exception as exc:
                    if not pretrained:
                        raise
                    raise WeightsError(
                        f"could not get pretrained weights for {timm_name!r} through timm "
                        f"({type(exc).__name__}: {exc}); without network access, pass a local "
                        "checkpoint file as features.weights"
                    ) from exc
            else:
                from timm.models.vision_transformer import VisionTransformer

                model = VisionTransformer(num_classes=0, dynamic_img_size=True, **(arch or {}))
        if cfg.weights not in ("hub", "none"):
            from .weights import load_weights_into

            load_weights_into(model, cfg.weights)
        model.eval().requires_grad_(False)
        self.model = model.to(self.device)
        self.patch_size = int(model.patch_embed.patch_size[0])
        self.dim = int(model.embed_dim)
        if cfg.patch_size is not None and cfg.patch_size != self.patch_size:
            raise ConfigError(
                "features.patch_size",
                cfg.patch_size,
                f"null or {self.patch_size} for backbone {name!r}",
            )
        data_cfg = getattr(model, "pretrained_cfg", None) or {}
        mean = data_cfg.get("mean", (0.485, 0.456, 0.406))
        std = data_cfg.get("std", (0.229, 0.224, 0.225))
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.pos_embed_mode = cfg.pos_embed
        self.batch_size = cfg.batch_size
        self._autocast = bool(cfg.amp and self.device.type == "cuda")

    # ------------------------------------------------------------------ tensors
    def to_tensor(self, batch: np.ndarray) -> Any:
        """``(B, H, W, 3)`` uint8 -> normalised ``(B, 3, H, W)`` float32 on :attr:`device`."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return (x - self._mean) / self._std

    def forward_grid(self, x: Any) -> Any:
        """Normalised ``(B, 3, H, W)`` -> ``(B, H/p, W/p, C)`` tokens (last block, final norm)."""
        if self.pos_embed_mode == "official":
            from .pos_embed import forward_official

            return forward_official(self.model, x)
        b, _, h, w = x.shape
        (tokens,) = self.model.forward_intermediates(
            x, indices=1, norm=True, output_fmt="NLC", intermediates_only=True
        )
        return tokens.reshape(b, h // self.patch_size, w // self.patch_size, tokens.shape[-1])

    # ------------------------------------------------------------------ public
    def extract(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """See :meth:`mis_pipeline.features.Backbone.extract`."""
        import torch

        check_patch_images(images, self.patch_size, self.name)
        out: list[np.ndarray | None] = [None] * len(images)
        for idx in _size_batches([im.shape[:2] for im in images], self.batch_size):
            batch = np.stack([images[i] for i in idx])
            with (
                torch.inference_mode(),
                torch.autocast("cuda", dtype=torch.bfloat16, enabled=self._autocast),
            ):
                feats = self.forward_grid(self.to_tensor(batch))
            feats_np = feats.float().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = feats_np[j]
        return out  # type: ignore[return-value]


def _size_batches(sizes: Sequence[tuple[int, ...]], batch_size: int) -> list[list[int]]:
    """Indices grouped by equal size (first-seen order), each group cut into ``batch_size`` runs."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(sizes):
        groups.setdefault(tuple(s), []).append(i)
    return [g[k : k + batch_size] for g in groups.values() for k in range(0, len(g), batch_size)]


# ---------------------------------------------------------------------- registered variants
@register_backbone("dino_vits8")
def build_dino_vits8(cfg: FeatureConfig) -> ViTBackbone:
    """DINO ViT-S/8 (the MIS paper's features), 384-d."""
    return ViTBackbone("dino_vits8", cfg, timm_name="vit_small_patch8_224.dino")


@register_backbone("dino_vits16")
def build_dino_vits16(cfg: FeatureConfig) -> ViTBackbone:
    """DINO ViT-S/16, 384-d."""
    return ViTBackbone("dino_vits16", cfg, timm_name="vit_small_patch16_224.dino")


@register_backbone("dino_vitb8")
def build_dino_vitb8(cfg: FeatureConfig) -> ViTBackbone:
    """DINO ViT-B/8, 768-d."""
    return ViTBackbone("dino_vitb8", cfg, timm_name="vit_base_patch8_224.dino")


@register_backbone("dino_vitb16")
def build_dino_vitb16(cfg: FeatureConfig) -> ViTBackbone:
    """DINO ViT-B/16, 768-d."""
    return ViTBackbone("dino_vitb16", cfg, timm_name="vit_base_patch16_224.dino")


@register_backbone("dinov2_vits14")
def build_dinov2_vits14(cfg: FeatureConfig) -> ViTBackbone:
    """DINOv2 ViT-S/14 (LVD-142M), 384-d, 37x37 training grid."""
    return ViTBackbone("dinov2_vits14", cfg, timm_name="vit_small_patch14_dinov2.lvd142m")


@register_backbone("test_vit_tiny")
def build_test_vit_tiny(cfg: FeatureConfig) -> ViTBackbone:
    """A tiny random ViT (patch 8, 32-d, 2 blocks) for fast tests of the ViT path."""
    return ViTBackbone("test_vit_tiny", cfg, arch=TEST_VIT_TINY_ARCH)
