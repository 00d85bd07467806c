"""RefCut's reference branch: masked average pooling (eq. 6) and the dual prompt MLPs (eq. 7).

The reference image goes through the same patch embedding and backbone as the target, without
click tokens (eq. 3; the model's ``encode_reference``), giving tokens ``F_r (B, N, D)`` on a
``h x w`` grid (``N = h * w``, 1/16 of the image side for ViT-B/16). Each reference mask
``M_r^*`` is resized to that grid and pools the tokens (eq. 6)::

    R_r^* = sum(F_r * M_r^*) / sum(M_r^*),   * in {+, -}

and two two-layer MLPs of the same structure but separate weights turn ``R_r^+`` and ``R_r^-``
into the prompts ``P_r^+``, ``P_r^-`` (eq. 7), which are added to the embedded target tokens
(eq. 5): ``F_e = E_img(I_t) + E_ext(C_t) + P_r^+ + P_r^-``.

Choices the paper leaves open (stated here; :class:`~mis_pipeline.config.RefCutConfig`):

- Mask resizing: ``"area"`` (default) gives each token the fraction of its patch the mask
  covers, so eq. 6 is an area-weighted mean; ``"nearest"`` samples patch centres.
- A missing or empty mask contributes a zero prompt (not ``MLP(0)``, which is the MLP's bias),
  so with no reference at all the model is exactly the plain model.
- MLP: ``Linear(D, hidden) -> GELU -> Linear(hidden, D)`` with ``hidden = D`` (the paper says
  "two layers of MLP"); the last layer starts at zero so a fine-tuned plain model is unchanged
  at the start of RefCut training.
- The prompt is one vector per sample, broadcast over every target token (eq. 5 adds it to
  ``F_e``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "reference_prompt",
    "attach_reference_branch",
    "resize_mask_to_grid",
    "masked_average_pool",
    "token_grid",
    "ReferencePromptGenerator",
    "RefCutModel",
]


def token_grid(image_hw: tuple[int, int], num_tokens: int) -> tuple[int, int]:
    """The ``(h, w)`` token grid of an image of size ``image_hw`` encoded into ``num_tokens``
    square patches."""
    H, W = int(image_hw[0]), int(image_hw[1])
    p = round(math.sqrt(H * W / max(num_tokens, 1)))
    if p < 1 or (H // p) * (W // p) != num_tokens:
        raise ValueError(f"{num_tokens} tokens do not tile a {H}x{W} image with square patches")
    return H // p, W // p


def resize_mask_to_grid(mask: torch.Tensor, grid_hw: tuple[int, int], mode: str = "area") -> torch.Tensor:
    """``mask (B, H, W)`` (bool or float in [0, 1]) -> float ``(B, h, w)`` on the token grid."""
    if mask.ndim != 3:
        raise ValueError(f"reference mask must be (B, H, W), got shape {tuple(mask.shape)}")
    if mode not in ("area", "nearest"):
        raise ValueError(f"mask_resize must be 'area' or 'nearest', got {mode!r}")
    m = mask.float().unsqueeze(1)
    if tuple(m.shape[-2:]) == tuple(grid_hw):
        return m[:, 0]
    if mode == "area":
        # exact fraction of each patch when the grid divides the image, area-interpolated otherwise
        return F.adaptive_avg_pool2d(m, grid_hw)[:, 0]
    return F.interpolate(m, size=grid_hw, mode="nearest")[:, 0]


def masked_average_pool(tokens: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 6. ``tokens (B, N, D)``, ``weights (B, h, w)`` with ``h * w = N`` (row-major, as the
    tokens) -> ``(pooled (B, D), present (B,) bool)``; ``pooled`` is 0 where the mask is empty."""
    b, n, _ = tokens.shape
    if weights.shape[0] != b or weights[0].numel() != n:
        raise ValueError(f"mask of shape {tuple(weights.shape)} does not match {n} tokens x batch {b}")
    w = weights.reshape(b, n, 1).to(tokens.dtype)
    total = w.sum(dim=1)  # (B, 1)
    present = total[:, 0] > 0
    pooled = (tokens * w).sum(dim=1) / torch.where(total > 0, total, torch.ones_like(total))
    return pooled, present


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    """Two-layer MLP whose output layer starts at zero."""
    mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


class ReferencePromptGenerator(nn.Module):
    """RPG of RefCut: ``forward(tokens, grid_hw, pos_mask, neg_mask) -> prompt (B, D)``.

    ``tokens (B, N, D)`` from the model's ``encode_reference``; ``pos_mask``/``neg_mask``
    ``(B, H, W)`` bool/float or ``None`` (missing); a sample whose mask is empty gets no prompt
    from it.
    """

    def __init__(self, dim: int, *, hidden_ratio: float = 1.0, mask_resize: str = "area") -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        hidden = max(1, int(round(dim * hidden_ratio)))
        self.dim = dim
        self.mask_resize = mask_resize
        self.pos_mlp = _mlp(dim, hidden)
        self.neg_mlp = _mlp(dim, hidden)

    def pooled(self, tokens, grid_hw, mask):
        """``(R (B, D), present (B,))`` for one mask (eq. 6 after the resize)."""
        return masked_average_pool(tokens, resize_mask_to_grid(mask, grid_hw, self.mask_resize))

    def forward(self, tokens, grid_hw, pos_mask=None, neg_mask=None):
        prompt = torch.zeros(tokens.shape[0], tokens.shape[2], dtype=tokens.dtype, device=tokens.device)
        for mask, mlp in ((pos_mask, self.pos_mlp), (neg_mask, self.neg_mlp)):
            if mask is None:
                continue
            r, present = self.pooled(tokens, grid_hw, mask)
            prompt = prompt + mlp(r) * present[:, None].to(tokens.dtype)
        return prompt


def reference_prompt(model: Any, rpg: ReferencePromptGenerator, image: torch.Tensor,
                     pos_mask: torch.Tensor | None = None, neg_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Prompt ``(B, D)`` of a reference: ``model.encode_reference(image)`` once, then ``rpg``.

    ``image (B, 3, H, W)`` float in [0, 1] (or uint8); masks ``(B, H, W)`` or None. When the
    model pads inputs to whole patches (``model.token_grid`` / ``model.patch_size``), the masks
    are zero-padded the same way before the resize, so each token pools exactly its patch.
    Both masks None: zeros, and no backbone pass.
    """
    b = image.shape[0]
    if pos_mask is None and neg_mask is None:
        return torch.zeros(b, rpg.dim, dtype=torch.float32, device=image.device)
    for name, m in (("positive", pos_mask), ("negative", neg_mask)):
        if m is not None and (m.ndim != 3 or m.shape[0] != b or tuple(m.shape[-2:]) != tuple(image.shape[-2:])):
            raise ValueError(f"{name} reference mask must be (B, H, W) = {(b, *image.shape[-2:])}, "
                             f"got {tuple(m.shape)}")
    tokens = model.encode_reference(image)
    hw = (int(image.shape[-2]), int(image.shape[-1]))
    if hasattr(model, "token_grid") and hasattr(model, "patch_size"):
        grid = tuple(model.token_grid(hw))
        p = int(model.patch_size)
        pad = (0, grid[1] * p - hw[1], 0, grid[0] * p - hw[0])
        if any(pad):
            pos_mask = None if pos_mask is None else F.pad(pos_mask.float(), pad)
            neg_mask = None if neg_mask is None else F.pad(neg_mask.float(), pad)
    else:
        grid = token_grid(hw, tokens.shape[1])
    return rpg(tokens, grid, pos_mask, neg_mask)


def attach_reference_branch(model: Any, *, hidden_ratio: float = 1.0, mask_resize: str = "area") -> Any:
    """Give a package model (``SimpleClickModel``) RefCut's prompt generator in place, if it has
    none, and record ``model.reference = True`` in its config so checkpoints rebuild it. The
    generator's output layers start at zero: the model still computes exactly what it did. Its
    first layers are drawn from a generator seeded by ``model.cfg.init_seed`` (the global torch
    generator is left as it was)."""
    from dataclasses import replace

    if not hasattr(model, "rpg"):
        dim = int(model.embed_dim)
        p = next(model.parameters())
        seed = int(getattr(getattr(model, "cfg", None), "init_seed", 0))
        with torch.random.fork_rng(devices=[]):  # seeded: a run and its resumption start alike
            torch.manual_seed(seed + 0x2EFC)
            rpg = ReferencePromptGenerator(dim, hidden_ratio=hidden_ratio, mask_resize=mask_resize)
        model.rpg = rpg.to(p.device)
    if hasattr(model, "cfg") and not getattr(model.cfg, "reference", False):
        model.cfg = replace(model.cfg, reference=True)
    return model


class RefCutModel(nn.Module):
    """A click model with RefCut's reference branch.

    ``model`` follows the package's model contract: ``model(image, prev_mask, points, labels,
    valid, *, prompt=None) -> logits`` and ``model.encode_reference(image) -> tokens (B, N, D)``.

    ``reference_prompt(ref_image, pos_mask, neg_mask)`` runs the backbone on the reference once
    and returns the prompt ``(B, D)``; pass it as ``prompt=`` to every click's forward (the
    predictor caches it per reference). ``forward(..., prompt=None)`` is the plain model.
    """

    def __init__(self, model: Any, dim: int, *, hidden_ratio: float = 1.0, mask_resize: str = "area") -> None:
        super().__init__()
        self.model = model
        self.rpg = ReferencePromptGenerator(dim, hidden_ratio=hidden_ratio, mask_resize=mask_resize)

    def reference_prompt(self, ref_image, pos_mask=None, neg_mask=None):
        """Prompt ``(B, D)`` for a reference ``ref_image (B, 3, H, W)`` float in [0, 1]; zeros
        (without a backbone call) when both masks are missing."""
        return reference_prompt(self.model, self.rpg, ref_image, pos_mask, neg_mask)

    def forward(self, image, prev_mask, points, labels, valid, *, prompt=None):
        return self.model(image, prev_mask, points, labels, valid, prompt=prompt)
