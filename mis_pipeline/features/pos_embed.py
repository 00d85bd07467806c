"""Position embeddings resized the way the official DINO / DINOv2 code does it.

timm's ``dynamic_img_size`` resizes the learned ``N x N`` table to the target grid with
``F.interpolate(size=grid, mode="bicubic", antialias=True)``. The official DINO code (and
DINOv2 with its default ``interpolate_offset=0.1``) instead calls
``F.interpolate(scale_factor=((grid_h + 0.1) / N, (grid_w + 0.1) / N), mode="bicubic")``
without antialiasing, and returns the table unchanged when the grid is the square training
grid. Passing ``scale_factor`` makes PyTorch sample at ``(i + 0.5) * N / (grid + 0.1) - 0.5``
rather than at ``(i + 0.5) * N / grid - 0.5``, so the two disagree slightly for every other
grid, and antialiasing adds a further difference when the grid is smaller than ``N``.

:func:`forward_official` runs a timm ``VisionTransformer`` (built with
``dynamic_img_size=True``) with that table: the same modules in the same order as timm's
``forward_intermediates`` (patch embed, prefix tokens, position embedding, blocks, final norm),
only the position-embedding resize differs. A test checks the two paths give identical tokens
at the training grid.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["official_pos_embed", "forward_official"]


def official_pos_embed(pos_embed: Any, grid: tuple[int, int], num_prefix_tokens: int) -> Any:
    """Resize a ViT position table to ``grid`` as the official DINO code does.

    Parameters
    ----------
    pos_embed : torch.Tensor, shape (1, num_prefix_tokens + N*N, C)
        The learned table (prefix entries first, then patches row-major).
    grid : (int, int)
        Target ``(grid_h, grid_w)`` in patches.
    num_prefix_tokens : int
        Leading entries that are not patches (1 for the class token; 0 if the table has none).

    Returns
    -------
    torch.Tensor, shape (1, num_prefix_tokens + grid_h*grid_w, C)
        Same dtype as ``pos_embed``. The input itself when ``grid == (N, N)``.
    """
    import torch
    import torch.nn.functional as F

    gh, gw = int(grid[0]), int(grid[1])
    n_patch = pos_embed.shape[1] - num_prefix_tokens
    n = int(math.isqrt(n_patch))
    if n * n != n_patch:
        raise ValueError(f"position table has {n_patch} patch entries, not a square number")
    if (gh, gw) == (n, n):
        return pos_embed
    prefix, table = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    dim = table.shape[-1]
    table = table.float().reshape(1, n, n, dim).permute(0, 3, 1, 2)
    resized = F.interpolate(
        table, scale_factor=((gh + 0.1) / n, (gw + 0.1) / n), mode="bicubic", align_corners=False
    )
    if tuple(resized.shape[-2:]) != (gh, gw):  # floor(n * (g + 0.1) / n) == g for any sane g
        raise RuntimeError(f"official resize gave {tuple(resized.shape[-2:])}, wanted {(gh, gw)}")
    resized = resized.permute(0, 2, 3, 1).reshape(1, gh * gw, dim).to(pos_embed.dtype)
    return torch.cat([prefix, resized], dim=1)


def forward_official(model: Any, x: Any) -> Any:
    """Last-block tokens after the final norm, official position-embedding resize.

    Parameters
    ----------
    model : timm.models.vision_transformer.VisionTransformer
        Built with ``dynamic_img_size=True`` (its patch embedding returns NHWC).
    x : torch.Tensor, shape (B, 3, H, W), float
        Normalised images; ``H`` and ``W`` multiples of the patch size.

    Returns
    -------
    torch.Tensor, shape (B, H // patch, W // patch, C)
        Patch tokens, prefix tokens (class / registers) dropped.
    """
    import torch

    tokens = model.patch_embed(x)
    if tokens.ndim != 4:
        raise ValueError("forward_official needs a ViT built with dynamic_img_size=True")
    b, gh, gw, dim = tokens.shape
    tokens = tokens.reshape(b, gh * gw, dim)
    prefix = []
    if model.cls_token is not None:
        prefix.append(model.cls_token.expand(b, -1, -1))
    if model.reg_token is not None:
        prefix.append(model.reg_token.expand(b, -1, -1))
    n_prefix_in_table = 0 if model.no_embed_class else model.num_prefix_tokens
    pos = official_pos_embed(model.pos_embed, (gh, gw), n_prefix_in_table)
    if model.no_embed_class:
        tokens = torch.cat([*prefix, tokens + pos], dim=1)
    else:
        tokens = torch.cat([*prefix, tokens], dim=1) + pos
    tokens = model.pos_drop(tokens)
    tokens = model.patch_drop(tokens)
    tokens = model.norm_pre(tokens)
    tokens = model.blocks(tokens)
    tokens = model.norm(tokens)
    return tokens[:, model.num_prefix_tokens :].reshape(b, gh, gw, dim)
