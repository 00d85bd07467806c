"""The plain ViT backbone of SimpleClick over timm: building, position table, windowed blocks,
and MAE / local-file initialisation.

The backbone is a timm :class:`~timm.models.vision_transformer.VisionTransformer` without class
token, final norm or classifier (SimpleClick uses the last block's tokens as they are; a class
token or final norm that no output depends on would only be unused parameters, which
distributed training refuses). Its state-dict names are timm's (``patch_embed.proj.weight``,
``pos_embed``, ``blocks.N.*``), the names of MAE's released encoder weights too.

Attention follows SimpleClick's ``forward_backbone`` (ViTDet-style): the token grid is cut into
non-overlapping windows of ``window`` tokens per side (224 px / patch, the MAE pre-training
size) in every block except the global ones, the last of each group of ``depth // 4`` blocks
(6 and 12 for the 12-block ViT-B). Where SimpleClick assumes the grid is a multiple of the
window (448 px crops, 2 x 2 windows), we also handle other grids: a side shorter than the window
is one window (no padding), a longer side that is not a multiple is zero-padded to one, the
padding dropped again before the next global block (the ViTDet rule).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import DependencyError, WeightsError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .arch import ViTArch

__all__ = [
    "build_vit",
    "global_block_ids",
    "interpolate_pos_embed",
    "run_blocks",
    "vit_init_state",
    "load_vit_init",
]

logger = logging.getLogger(__name__)


def build_vit(arch: ViTArch, img_size: int) -> Any:
    """A timm ViT for ``arch`` whose position table fits ``img_size`` (px, square)."""
    try:
        from timm.models.vision_transformer import VisionTransformer
    except ImportError as exc:  # pragma: no cover - timm is a dependency
        raise DependencyError("timm", "the SimpleClick model") from exc
    if img_size % arch.patch_size:
        raise WeightsError(f"model.img_size {img_size} is not a multiple of the patch size {arch.patch_size}")
    vit = VisionTransformer(
        img_size=img_size,
        patch_size=arch.patch_size,
        embed_dim=arch.embed_dim,
        depth=arch.depth,
        num_heads=arch.num_heads,
        mlp_ratio=arch.mlp_ratio,
        qkv_bias=True,
        class_token=False,
        global_pool="",
        num_classes=0,
        final_norm=False,
    )
    # Inputs of any (patch-multiple) size reach the patch embedding; the grid is then checked here.
    vit.patch_embed.strict_img_size = False
    return vit


def global_block_ids(depth: int) -> frozenset[int]:
    """0-based indices of the global-attention blocks (SimpleClick: the last of each group of
    ``6 if depth == 12 else depth // 4`` blocks)."""
    group = 6 if depth == 12 else max(1, depth // 4)
    return frozenset(i for i in range(depth) if (i + 1) % group == 0)


def interpolate_pos_embed(pos: torch.Tensor, src_grid: tuple[int, int], grid: tuple[int, int]) -> torch.Tensor:
    """Position table ``(1, gh*gw, D)`` resampled from ``src_grid`` to ``grid`` (bicubic,
    ``align_corners=False``, as SimpleClick's ``interpolate_pos_embed``); unchanged if equal."""
    import torch.nn.functional as F

    if tuple(src_grid) == tuple(grid):
        return pos
    d = pos.shape[-1]
    x = pos.reshape(1, src_grid[0], src_grid[1], d).permute(0, 3, 1, 2)
    x = F.interpolate(x.float(), size=tuple(grid), mode="bicubic", align_corners=False).to(pos.dtype)
    return x.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], d)


def _partition(x: torch.Tensor, grid: tuple[int, int], win: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(B, gh*gw, D)`` -> ``(B * nwin, wh*ww, D)`` windows in SimpleClick's order (row-major
    windows, row-major tokens inside); the grid is zero-padded to a multiple of the window."""
    import torch.nn.functional as F

    b, _, d = x.shape
    gh, gw = grid
    wh, ww = win
    ph, pw = (-gh) % wh, (-gw) % ww
    x = x.view(b, gh, gw, d)
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = gh + ph, gw + pw
    x = x.view(b, hp // wh, wh, wp // ww, ww, d).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, wh * ww, d), (hp, wp)


def _unpartition(
    x: torch.Tensor, batch: int, grid: tuple[int, int], padded: tuple[int, int], win: tuple[int, int]
) -> torch.Tensor:
    d = x.shape[-1]
    hp, wp = padded
    wh, ww = win
    x = x.view(batch, hp // wh, wp // ww, wh, ww, d).permute(0, 1, 3, 2, 4, 5).reshape(batch, hp, wp, d)
    return x[:, : grid[0], : grid[1]].reshape(batch, grid[0] * grid[1], d)


def run_blocks(vit: Any, x: torch.Tensor, grid: tuple[int, int], window: int) -> torch.Tensor:
    """The transformer blocks on tokens ``x (B, gh*gw, D)`` (row-major grid); window attention
    of ``window`` tokens per side outside the global blocks (``window == 0``: all global)."""
    blocks = list(vit.blocks)
    win = (min(window, grid[0]), min(window, grid[1])) if window > 0 else grid
    if win == tuple(grid):  # one window covers the grid: plain global attention everywhere
        for blk in blocks:
            x = blk(x)
        return x
    glob = global_block_ids(len(blocks))
    b = x.shape[0]
    padded: tuple[int, int] | None = None
    for i, blk in enumerate(blocks):
        if i in glob:
            if padded is not None:
                x = _unpartition(x, b, grid, padded, win)
                padded = None
        elif padded is None:
            x, padded = _partition(x, grid, win)
        x = blk(x)
    if padded is not None:
        x = _unpartition(x, b, grid, padded, win)
    return x


# --------------------------------------------------------------------------- initialisation
_PREFIXES = ("module.", "backbone.", "encoder.")


def vit_init_state(arch: ViTArch, init: str) -> dict[str, Any]:
    """The ViT weights named by ``init``: ``"mae"`` (timm's MAE weights of ``arch``, downloaded)
    or a local checkpoint file (read without unpickling code)."""
    if init == "mae":
        if arch.mae is None:
            raise WeightsError(
                "model.init 'mae': no MAE weights exist for this architecture; use 'random' or a local file"
            )
        import timm

        try:
            ref = timm.create_model(arch.mae, pretrained=True, num_classes=0)
        except Exception as exc:  # network / hub errors come in many types
            raise WeightsError(
                f"cannot fetch timm's '{arch.mae}' ({type(exc).__name__}: {exc}); download the MAE "
                "encoder weights and set model.init to the file's path"
            ) from exc
        return dict(ref.state_dict())
    from ..features.weights import read_checkpoint

    return read_checkpoint(init)


def load_vit_init(vit: Any, state: Mapping[str, Any], source: str) -> None:
    """Load ViT weights ``state`` (timm / MAE names; class token, final norm, heads and MAE
    decoder entries ignored) into ``vit``, resampling the position table to ``vit``'s grid.

    Every parameter of ``vit`` must be found with the right shape, else :class:`WeightsError`.
    """
    import torch

    sd = dict(state)
    for prefix in _PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    expected = vit.state_dict()
    out: dict[str, Any] = {}
    for k in expected:
        if k in sd:
            out[k] = sd[k]
    if "pos_embed" in out:
        pos = out["pos_embed"]
        n, d = pos.shape[-2], pos.shape[-1]
        side = math.isqrt(n)
        if side * side != n:  # a class-token position first (MAE, timm with class token)
            side = math.isqrt(n - 1)
            if side * side != n - 1:
                raise WeightsError(f"{source}: position table of {n} entries is not a square grid")
            pos = pos[:, 1:]
        grid = tuple(vit.patch_embed.grid_size)
        out["pos_embed"] = interpolate_pos_embed(pos.reshape(1, side * side, d), (side, side), grid)
        if (side, side) != grid:
            logger.info("%s: position table interpolated from %dx%d to %dx%d", source, side, side, *grid)
    missing = sorted(set(expected) - set(out))
    wrong = sorted(
        f"{k}: file {tuple(out[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in out
        if tuple(out[k].shape) != tuple(expected[k].shape)
    )
    if missing or wrong:
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing[:6]) + (f" (+{len(missing) - 6} more)" if len(missing) > 6 else ""))
        if wrong:
            parts.append("wrong shape: " + ", ".join(wrong[:6]))
        raise WeightsError(f"{source} does not fit the ViT of this model.arch (" + "; ".join(parts) + ")")
    ignored = sorted(set(sd) - set(out))
    if ignored:
        logger.info("%s: %d entries not used by the backbone (e.g. %s)", source, len(ignored), ignored[0])
    with torch.no_grad():
        vit.load_state_dict({k: v.to(expected[k].dtype) for k, v in out.items()}, strict=True)
