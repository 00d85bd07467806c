"""The smoothness constraint of MIS (Li et al., ICCV 2023, eq. 7), and the public code's variant.

Eq. 7 asks neighbouring pixels of similar colour to get similar predictions::

    L_smooth = mean_i  1/|N_i| * sum_{j in N_i}  W_ij * (Q_i - Q_j)^2
    W_ij     = exp(-|xy_i - xy_j|^2 / (2 sigma_xy^2) - (l_i - l_j)^2 / (2 sigma_l^2)
                   - |uv_i - uv_j|^2 / (2 sigma_uv^2))

with ``(l, u, v)`` the YUV colour of a pixel on a 0-255 scale (BT.601 analogue YUV:
``Y = 0.299 R + 0.587 G + 0.114 B``, ``U = -0.147 R - 0.289 G + 0.436 B``,
``V = 0.615 R - 0.515 G - 0.100 B``) and ``N_i`` the 5x5 window around pixel ``i`` (24
neighbours). :func:`smoothness_paper` implements it; the choices the paper leaves open:

- ``Q`` is the predicted probability (the paper: ``Q in [0, 1]``, the output that eq. 6 feeds to
  BCE); ``smooth_on="logits"`` takes the logits instead, as the public code does;
- eq. 7 sums over pixels; we average over pixels (and the batch), as the public code does, so
  that ``lambda = 10`` has the scale it was tuned at;
- a neighbour outside the image does not exist: ``|N_i|`` counts the neighbours inside it;
- the sigmas are not given in the paper; the defaults are the public code's (``sigma_xy^2 = 16``,
  ``sigma_l^2 = 16``, ``sigma_uv^2 = 8`` on a 0-255 image).

:func:`smoothness_reference` reproduces the public implementation (``lkhl/MIS``,
``mis/model/losses.py``; DESIGN.md "Loss") for comparisons: 8 neighbours at offsets of 2 px (a
dilated 3x3 window), borders padded by replication (a neighbour beyond the border is the border
pixel itself, and so are its coordinates), the colour conversion multiplying by the *transposed*
matrix (``yuv_k = sum_c rgb_c * M[c, k]``: white becomes ``(196, -55, 115)`` instead of
``(255, 0, 0)``), affinities ``exp(-dxy^2/(2*16) - dY^2/(2*16) - dUV^2/(2*8))`` applied to the
logits, and the mean over batch, neighbours and pixels.

Shapes: ``logits (B, 1, H, W)`` float; ``image (B, 3, H', W')`` RGB, either float in ``[0, 1]``
(the model's input) or uint8; it is resized bilinearly to ``(H, W)`` when the sizes differ (as
the public code does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..config import LossConfig

__all__ = ["YUV_MATRIX", "rgb_to_yuv", "smoothness_loss", "smoothness_paper", "smoothness_reference"]

#: RGB -> YUV (rows: Y, U, V), applied as ``yuv = YUV_MATRIX @ rgb``.
YUV_MATRIX = ((0.299, 0.587, 0.114), (-0.147, -0.289, 0.436), (0.615, -0.515, -0.100))


def _image_255(image: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """``(B, 3, H', W')`` uint8 or float in [0, 1] -> float32 0-255 at ``hw`` (bilinear)."""
    import torch
    import torch.nn.functional as F

    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W) RGB, got shape {tuple(image.shape)}")
    img = image.float() if image.dtype == torch.uint8 else image.float() * 255.0
    if tuple(img.shape[-2:]) != tuple(hw):
        img = F.interpolate(img, size=hw, mode="bilinear", align_corners=False)
    return img


def _check_logits(logits: torch.Tensor) -> None:
    if logits.ndim != 4 or logits.shape[1] != 1:
        raise ValueError(f"logits must be (B, 1, H, W), got shape {tuple(logits.shape)}")


def rgb_to_yuv(rgb: torch.Tensor, *, transposed: bool = False) -> torch.Tensor:
    """YUV of ``rgb (B, 3, H, W)`` float (any scale, kept): ``yuv = M @ rgb`` per pixel.

    ``transposed=True`` reproduces the public MIS code's ``einsum('nchw,ck->nkhw')``, i.e.
    ``yuv = M.T @ rgb`` (a bug kept only for :func:`smoothness_reference`).
    """
    import torch

    m = torch.tensor(YUV_MATRIX, dtype=rgb.dtype, device=rgb.device)
    if transposed:
        m = m.T
    return torch.einsum("kc,bchw->bkhw", m, rgb)


def _offsets(kernel: int, dilation: int) -> list[tuple[int, int]]:
    r = kernel // 2
    return [
        (dy * dilation, dx * dilation)
        for dy in range(-r, r + 1)
        for dx in range(-r, r + 1)
        if (dy, dx) != (0, 0)
    ]


def smoothness_paper(
    logits: torch.Tensor,
    image: torch.Tensor,
    *,
    kernel: int = 5,
    dilation: int = 1,
    sigma_xy: float = 4.0,
    sigma_l: float = 4.0,
    sigma_uv: float = 8.0**0.5,
    smooth_on: str = "probs",
) -> torch.Tensor:
    """MIS eq. 7 as the paper states it (see the module docstring); a scalar tensor.

    ``kernel`` (odd) is the side of the neighbourhood window and ``dilation`` the spacing of its
    pixels; the sigmas are on a 0-255 colour scale and in pixels.
    """
    import torch

    _check_logits(logits)
    if kernel < 3 or kernel % 2 != 1:
        raise ConfigError("loss.smooth_kernel", kernel, "an odd integer >= 3")
    if smooth_on not in ("probs", "logits"):
        raise ConfigError("loss.smooth_on", smooth_on, "'probs' or 'logits'")
    b, _, h, w = logits.shape
    q = logits.float()[:, 0]
    if smooth_on == "probs":
        q = torch.sigmoid(q)
    # Each unordered pair {i, j} appears twice in eq. 7, as (i, j) weighted 1/|N_i| and as (j, i)
    # weighted 1/|N_j|, with the same W_ij (symmetric): sum it once with 1/|N_i| + 1/|N_j|, over
    # half of the offsets. This halves the work; the tests check it against the pixel loop.
    r = kernel // 2
    steps = [k * dilation for k in range(-r, r + 1)]
    with torch.no_grad():  # the affinities depend on the image only
        # |N_i| of the product window (rows x columns inside the image, minus the centre)
        rr = torch.arange(h, device=q.device)
        cc = torch.arange(w, device=q.device)
        n_rows = sum(((rr + s_) >= 0) & ((rr + s_) < h) for s_ in steps).to(q.dtype)
        n_cols = sum(((cc + s_) >= 0) & ((cc + s_) < w) for s_ in steps).to(q.dtype)
        inv_n = 1.0 / (n_rows[:, None] * n_cols[None, :] - 1.0).clamp_min(1.0)
        scale = torch.tensor(
            [1.0 / (2.0**0.5 * sigma_l), 1.0 / (2.0**0.5 * sigma_uv), 1.0 / (2.0**0.5 * sigma_uv)],
            device=q.device,
        ).view(1, 3, 1, 1)
        yuv = rgb_to_yuv(_image_255(image, (h, w))) * scale  # |difference|^2 is the colour exponent
    total = q.new_zeros(())
    for dy, dx in _offsets(kernel, dilation):
        if (dy, dx) < (0, 0) or abs(dy) >= h or abs(dx) >= w:
            continue  # the opposite offset covers the pair; or no pair fits
        # pairs i = (r, c), j = (r + dy, c + dx) with both inside the image
        ri, rj = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
        ci, cj = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
        with torch.no_grad():
            expo = ((yuv[:, :, ri, ci] - yuv[:, :, rj, cj]) ** 2).sum(1) + (dy * dy + dx * dx) / (2.0 * sigma_xy**2)
            coef = torch.exp(-expo) * (inv_n[ri, ci] + inv_n[rj, cj])
        total = total + (coef * (q[:, ri, ci] - q[:, rj, cj]) ** 2).sum()
    return total / (b * h * w)


def smoothness_reference(
    logits: torch.Tensor,
    image: torch.Tensor,
    *,
    kernel: int = 3,
    dilation: int = 2,
    var_xy: float = 16.0,
    var_l: float = 16.0,
    var_uv: float = 8.0,
) -> torch.Tensor:
    """The public MIS code's smoothness term (see the module docstring); a scalar tensor.

    The ``var_*`` arguments are the public constructor's ``sigma_*`` values, which it uses as
    variances (``exp(-d^2 / var / 2)``).
    """
    import torch
    import torch.nn.functional as F

    _check_logits(logits)
    b, _, h, w = logits.shape
    pred = logits.float()
    p = dilation * (kernel // 2)
    pads = (p, p, p, p)
    offsets = _offsets(kernel, dilation)
    with torch.no_grad():  # the affinities depend on the image only
        yuv = rgb_to_yuv(_image_255(image, (h, w)), transposed=True)
        rows = torch.arange(h, device=pred.device, dtype=pred.dtype)
        cols = torch.arange(w, device=pred.device, dtype=pred.dtype)
        pos = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=0)[None]  # (1, 2, H, W)
        yuv_p = F.pad(yuv, pads, mode="replicate")
        pos_p = F.pad(pos, pads, mode="replicate")
        weight = pred.new_empty((b, len(offsets), h, w))
        for k, (dy, dx) in enumerate(offsets):
            win = (slice(None), slice(None), slice(p + dy, p + dy + h), slice(p + dx, p + dx + w))
            d = yuv - yuv_p[win]
            dp = pos - pos_p[win]
            expo = (
                (dp**2).sum(1) / var_xy / 2.0
                + d[:, 0] ** 2 / var_l / 2.0
                + (d[:, 1:] ** 2).sum(1) / var_uv / 2.0
            )
            weight[:, k] = torch.exp(-expo)
    nb = F.unfold(F.pad(pred, pads, mode="replicate"), kernel_size=kernel, dilation=dilation)
    nb = nb.view(b, kernel * kernel, h * w)
    centre = kernel * kernel // 2
    nb = torch.cat([nb[:, :centre], nb[:, centre + 1 :]], dim=1)
    return (weight.view(b, len(offsets), h * w) * (pred.view(b, 1, h * w) - nb) ** 2).mean()


def smoothness_loss(logits: torch.Tensor, image: torch.Tensor, cfg: LossConfig | None = None) -> torch.Tensor:
    """The smoothness term configured by ``cfg`` (defaults when None): :func:`smoothness_paper`
    with its settings or, with ``cfg.reference_code``, :func:`smoothness_reference`."""
    from ..config import LossConfig

    cfg = cfg if cfg is not None else LossConfig()
    if cfg.reference_code:
        return smoothness_reference(logits, image)
    return smoothness_paper(
        logits,
        image,
        kernel=cfg.smooth_kernel,
        dilation=cfg.smooth_dilation,
        sigma_xy=cfg.sigma_xy,
        sigma_l=cfg.sigma_l,
        sigma_uv=cfg.sigma_uv,
        smooth_on=cfg.smooth_on,
    )
