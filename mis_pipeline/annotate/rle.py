"""Run-length encodings of binary masks: the compact form sent to the browser, and COCO's RLE.

Two encodings of a mask ``(H, W) bool``:

- :func:`encode_rows` / :func:`decode_rows`: runs over the pixels in **row-major** order (what
  the page paints into an ``ImageData`` buffer), alternating background / foreground and
  starting with background (a mask whose first pixel is foreground starts with a 0 run).
- :func:`coco_rle` / :func:`coco_rle_decode`: COCO's compressed RLE (``{"size": [H, W],
  "counts": str}``), runs in **column-major** order packed into ASCII by the scheme of the
  COCO API (``maskApi.c``: ``rleToString`` / ``rleFrString``): each count from the fourth on is
  stored as the difference to the count two places before it, in 5-bit groups with a
  continuation bit, offset by 48. The tests compare both directions with ``pycocotools``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "encode_rows",
    "decode_rows",
    "run_lengths",
    "coco_rle",
    "coco_rle_decode",
    "counts_to_string",
    "string_to_counts",
    "mask_bbox",
    "CANVAS_RLE_JS",
]

#: A JavaScript function of a canvas element id (for a browser driver's ``evaluate``, as the
#: page tests and ``benchmarks/bench_annotate.py`` use it): the run lengths (row-major,
#: background first) of the canvas pixels whose alpha is > 0, as ``{"size": [H, W],
#: "counts": [...]}``, the form :func:`decode_rows` reads. What the page shows, read back.
CANVAS_RLE_JS = """(id) => {
  const c = document.getElementById(id);
  if (!c.width || !c.height) return {size: [c.height, c.width], counts: [c.width * c.height]};
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const counts = []; let cur = 0, run = 0;
  for (let i = 3; i < d.length; i += 4) {
    const v = d[i] > 0 ? 1 : 0;
    if (v !== cur) { counts.push(run); run = 0; cur = v; }
    run++;
  }
  counts.push(run);
  return {size: [c.height, c.width], counts};
}"""


def run_lengths(flat: np.ndarray) -> np.ndarray:
    """Alternating run lengths of a 1-D bool array, starting with a (possibly empty) False run.

    Returns ``(k,)`` int64 whose sum is ``flat.size``.
    """
    flat = np.asarray(flat, dtype=bool).ravel()
    if flat.size == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds)
    if flat[0]:
        counts = np.concatenate([[0], counts])
    return counts.astype(np.int64)


def encode_rows(mask: np.ndarray) -> dict[str, object]:
    """Row-major RLE of ``mask`` ``(H, W)`` bool: ``{"size": [H, W], "counts": [int, ...]}``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": run_lengths(mask).tolist()}


def _expand(counts: np.ndarray, total: int) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and (counts.min() < 0 or int(counts.sum()) != total):
        raise ValueError(f"run lengths must be >= 0 and sum to {total}, got sum {int(counts.sum())}")
    if not counts.size and total:
        raise ValueError(f"empty run lengths for {total} pixels")
    values = (np.arange(counts.size) % 2).astype(bool)
    return np.repeat(values, counts)


def decode_rows(rle: dict[str, object]) -> np.ndarray:
    """Inverse of :func:`encode_rows` -> ``(H, W)`` bool."""
    h, w = (int(v) for v in rle["size"])  # type: ignore[union-attr]
    return _expand(np.asarray(rle["counts"]), h * w).reshape(h, w)


def counts_to_string(counts: np.ndarray) -> str:
    """COCO's ASCII packing of run lengths (``rleToString`` of the COCO API)."""
    cnts = [int(c) for c in counts]
    out = bytearray()
    for i, c in enumerate(cnts):
        x = c - cnts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences end at -1
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(ch + 48)
    return out.decode("ascii")


def string_to_counts(s: str) -> np.ndarray:
    """Inverse of :func:`counts_to_string` (``rleFrString`` of the COCO API) -> int64 run lengths."""
    data = s.encode("ascii")
    cnts: list[int] = []
    p = 0
    while p < len(data):
        x = 0
        k = 0
        more = True
        while more:
            if p >= len(data):
                raise ValueError("COCO RLE string ends inside a count")
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return np.asarray(cnts, dtype=np.int64)


def coco_rle(mask: np.ndarray) -> dict[str, object]:
    """COCO compressed RLE of ``mask`` ``(H, W)`` bool: ``{"size": [H, W], "counts": str}``."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    counts = run_lengths(mask.ravel(order="F"))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts_to_string(counts)}


def coco_rle_decode(rle: dict[str, object]) -> np.ndarray:
    """Inverse of :func:`coco_rle` -> ``(H, W)`` bool."""
    h, w = (int(v) for v in rle["size"])  # type: ignore[union-attr]
    counts = rle["counts"]
    arr = string_to_counts(counts) if isinstance(counts, str) else np.asarray(counts, dtype=np.int64)
    return _expand(arr, h * w).reshape(w, h).T.copy()


def mask_bbox(mask: np.ndarray) -> list[float]:
    """COCO bounding box ``[x, y, width, height]`` (pixels) of ``mask``; zeros when empty."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]
