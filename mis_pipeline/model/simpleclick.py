"""The SimpleClick interactive segmentation model (Liu et al., ICCV 2023), the model MIS trains.

::

    image (B, 3, H, W) in [0, 1] --ImageNet mean/std--> patch embedding ----------+
    [prev_mask, pos disks, neg disks] (B, 3, H, W) --> click patch embedding ---(+)--> + position table
        --> ViT blocks (window / global attention) --> (B, D, H/p, W/p)
        --> simple feature pyramid (1/4 .. 1/32) --> all-MLP head --> logits at 1/4
        --> bilinear (align_corners=True) to (H, W)

Inputs whose sides are not multiples of the patch size are zero-padded at the bottom and right
(after normalisation, so the padding is the mean colour, with empty click maps) and the logits
cropped back; at patch-multiple sizes the computation is SimpleClick's. The position table is
learnt at ``img_size`` and resampled bicubically for other grids (SimpleClick does the same at
inference, ``interpolate_pos_embed_inference``).

Hooks for other methods:

- ``prompt`` (RefCut): ``(B, D)`` or ``(B, N, D)`` added to the embedded target tokens (after
  the position table, before the blocks);
- :meth:`SimpleClickModel.encode_reference`: the backbone's tokens of an image with no click
  tokens, ``(B, N, D)``;
- :meth:`SimpleClickModel.embed_image` / :meth:`SimpleClickModel.forward_maps`: the image patch
  embedding is the only part that does not depend on the clicks (the click tokens join before
  the first block), so a predictor can compute it once per image and reuse it for every click.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .arch import ViTArch, get_arch
from .backbone import build_vit, interpolate_pos_embed, load_vit_init, run_blocks, vit_init_state
from .decoder import MLPHead, SimpleFeaturePyramid

if TYPE_CHECKING:  # pragma: no cover
    from ..config import ModelConfig

__all__ = ["SimpleClickModel", "build_model", "IMAGENET_MEAN", "IMAGENET_STD"]

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SimpleClickModel(nn.Module):
    """SimpleClick over a timm ViT (module docstring). Build with :func:`build_model`."""

    def __init__(self, cfg: ModelConfig, arch: ViTArch) -> None:
        super().__init__()
        if cfg.window and cfg.window % arch.patch_size:
            from ..errors import ConfigError

            raise ConfigError("model.window", cfg.window, f"0 or a multiple of the patch size {arch.patch_size}")
        self.cfg = cfg
        self.arch = arch
        self.backbone = build_vit(arch, cfg.img_size)
        p = arch.patch_size
        self.click_embed = nn.Conv2d(3, arch.embed_dim, kernel_size=p, stride=p)
        self.neck = SimpleFeaturePyramid(arch.embed_dim, arch.neck_dims)
        self.head = MLPHead(arch.neck_dims, arch.head_channels, cfg.head_dropout)
        if getattr(cfg, "reference", False):  # RefCut's prompt generator (mis_pipeline.refcut.prompt)
            from ..refcut.prompt import ReferencePromptGenerator

            self.rpg = ReferencePromptGenerator(arch.embed_dim)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ geometry
    @property
    def patch_size(self) -> int:
        return self.arch.patch_size

    @property
    def embed_dim(self) -> int:
        return self.arch.embed_dim

    def token_grid(self, hw: tuple[int, int]) -> tuple[int, int]:
        """Token grid ``(gh, gw)`` of an ``(H, W)`` input (sides rounded up to the patch size)."""
        p = self.arch.patch_size
        return (math.ceil(hw[0] / p), math.ceil(hw[1] / p))

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        p = self.arch.patch_size
        ph, pw = (-x.shape[-2]) % p, (-x.shape[-1]) % p
        return F.pad(x, (0, pw, 0, ph)) if ph or pw else x

    # ------------------------------------------------------------------ pieces
    def embed_image(self, image: torch.Tensor) -> torch.Tensor:
        """Image patch tokens ``(B, N, D)`` (N = gh * gw, row-major) of ``image (B, 3, H, W)``
        float in [0, 1] (or uint8): normalised, padded, patch-embedded. Independent of clicks."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got shape {tuple(image.shape)}")
        x = image.float() / 255.0 if image.dtype == torch.uint8 else image
        x = (x - self.mean) / self.std
        return self.backbone.patch_embed(self._pad(x))

    def embed_clicks(self, coord_maps: torch.Tensor) -> torch.Tensor:
        """Click tokens ``(B, N, D)`` of ``[prev_mask, pos disks, neg disks]`` ``(B, 3, H, W)``."""
        if coord_maps.ndim != 4 or coord_maps.shape[1] != 3:
            raise ValueError(f"click maps must be (B, 3, H, W) [prev_mask, pos, neg], got {tuple(coord_maps.shape)}")
        return self.click_embed(self._pad(coord_maps)).flatten(2).transpose(1, 2)

    def pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        """Position table ``(1, gh*gw, D)`` for a token grid (resampled if not the training grid)."""
        return interpolate_pos_embed(self.backbone.pos_embed, tuple(self.backbone.patch_embed.grid_size), grid)

    def encode(self, tokens: torch.Tensor, grid: tuple[int, int], prompt: torch.Tensor | None = None) -> torch.Tensor:
        """Backbone tokens ``(B, N, D)``: position table (and ``prompt``) added, blocks run."""
        if tokens.shape[1] != grid[0] * grid[1]:
            raise ValueError(f"{tokens.shape[1]} tokens do not fill a {grid[0]}x{grid[1]} grid")
        x = tokens + self.pos_embed(grid)
        if prompt is not None:
            if prompt.ndim == 2:
                prompt = prompt[:, None, :]
            if prompt.ndim != 3 or prompt.shape[-1] != x.shape[-1] or prompt.shape[1] not in (1, x.shape[1]):
                raise ValueError(
                    f"prompt must be (B, {x.shape[-1]}) or (B, {x.shape[1]}, {x.shape[-1]}), got {tuple(prompt.shape)}"
                )
            x = x + prompt
        return run_blocks(self.backbone, x, grid, self.cfg.window // self.arch.patch_size)

    def decode(self, feats: torch.Tensor, grid: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
        """Logits ``(B, 1, H, W)`` from backbone tokens ``(B, N, D)``."""
        b, _, d = feats.shape
        fmap = feats.transpose(1, 2).reshape(b, d, grid[0], grid[1])
        logits = self.head(self.neck(fmap))
        p = self.arch.patch_size
        padded = (grid[0] * p, grid[1] * p)
        logits = F.interpolate(logits, size=padded, mode="bilinear", align_corners=True)
        return logits[:, :, : hw[0], : hw[1]]

    # ------------------------------------------------------------------ entry points
    def click_maps(
        self, points: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor, hw: tuple[int, int]
    ) -> torch.Tensor:
        """Disk maps ``(B, 2, H, W)`` [positive, negative] of integer ``(row, col)`` clicks."""
        from ..clicks import click_maps_torch

        return click_maps_torch(points, labels, valid, hw, radius=self.cfg.click_radius)

    def forward_maps(
        self,
        image: torch.Tensor | None,
        coord_maps: torch.Tensor,
        *,
        prompt: torch.Tensor | None = None,
        image_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, 1, H, W)`` from the image (or its cached :meth:`embed_image` tokens,
        then ``image`` may be None) and ``coord_maps (B, 3, H, W)`` = [prev_mask, pos, neg]."""
        hw = (int(coord_maps.shape[-2]), int(coord_maps.shape[-1]))
        if image_tokens is None:
            if image is None:
                raise ValueError("forward_maps needs the image or its image_tokens")
            if tuple(image.shape[-2:]) != hw:
                raise ValueError(f"image {tuple(image.shape[-2:])} and click maps {hw} differ in size")
            image_tokens = self.embed_image(image)
        grid = self.token_grid(hw)
        x = image_tokens.to(coord_maps.dtype) + self.embed_clicks(coord_maps)
        return self.decode(self.encode(x, grid, prompt), grid, hw)

    def forward(
        self,
        image: torch.Tensor,
        prev_mask: torch.Tensor,
        points: torch.Tensor,
        labels: torch.Tensor,
        valid: torch.Tensor,
        *,
        prompt: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, 1, H, W)``.

        Parameters
        ----------
        image : (B, 3, H, W) float32 in [0, 1] (or uint8); normalised here (ImageNet mean/std)
        prev_mask : (B, 1, H, W) float in [0, 1], the previous prediction (zeros at the start)
        points : (B, K, 2) integer ``(row, col)``; labels : (B, K) 1 positive / 0 negative;
        valid : (B, K) bool — clicks drawn as disks of ``model.click_radius``
        prompt : optional (B, D) or (B, N, D) added to the target tokens (RefCut)
        """
        hw = (int(image.shape[-2]), int(image.shape[-1]))
        if prev_mask.shape != (image.shape[0], 1, *hw):
            raise ValueError(f"prev_mask must be {(image.shape[0], 1, *hw)}, got {tuple(prev_mask.shape)}")
        maps = self.click_maps(points, labels, valid, hw).to(prev_mask.dtype)
        return self.forward_maps(image, torch.cat([prev_mask, maps], dim=1), prompt=prompt)

    def reference_prompt(
        self, image: torch.Tensor, pos_mask: torch.Tensor | None = None, neg_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """RefCut prompt ``(B, D)`` of a reference ``image (B, 3, H, W)`` and masks ``(B, H, W)``
        (bool/float, or None when missing): one :meth:`encode_reference` pass, eq. 6 pooling and
        the eq. 7 MLPs (:class:`~mis_pipeline.refcut.prompt.ReferencePromptGenerator`). Zeros
        without a backbone pass when both masks are None. Needs ``model.reference``."""
        if not hasattr(self, "rpg"):
            from ..errors import ConfigError

            raise ConfigError("model.reference", False, "true (a model trained with train.mode 'refcut')")
        from ..refcut.prompt import reference_prompt

        return reference_prompt(self, self.rpg, image, pos_mask, neg_mask)

    def encode_reference(self, image: torch.Tensor) -> torch.Tensor:
        """Backbone tokens ``(B, N, D)`` of ``image (B, 3, H, W)`` with no click tokens (RefCut's
        reference branch); ``N = gh * gw`` row-major, see :meth:`token_grid`."""
        hw = (int(image.shape[-2]), int(image.shape[-1]))
        grid = self.token_grid(hw)
        return self.encode(self.embed_image(image), grid)


def build_model(cfg: ModelConfig | None = None, *, init: bool = True) -> SimpleClickModel:
    """The model of ``cfg`` (defaults: ViT-B/16 at 448 px, MAE weights from timm).

    Every layer is first initialised from a generator seeded with ``cfg.init_seed`` (the global
    torch generator is left as it was), then the ViT is loaded from ``cfg.init`` unless it is
    ``"random"``. ``init=False`` skips the loading (used when a checkpoint follows).
    """
    from ..config import ModelConfig

    cfg = cfg if cfg is not None else ModelConfig()
    arch = get_arch(cfg.arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        model = SimpleClickModel(cfg, arch)
    if init and cfg.init != "random":
        source = f"timm '{arch.mae}'" if cfg.init == "mae" else repr(cfg.init)
        load_vit_init(model.backbone, vit_init_state(arch, cfg.init), source)
        logger.info("ViT initialised from %s", source)
    return model
