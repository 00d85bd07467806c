"""Per-browser-session annotation state: one predictor, the clicks and the answers so far.

Each page load asks the server for a session id (kept in the page's memory, so two tabs, even
of the same browser, have two sessions and never mix their clicks). A session owns its own
predictor instance, because predictors keep per-image state between ``reset`` and ``predict``.
The pool keeps at most ``max_sessions`` sessions and drops the least recently used one.

The click loop is the evaluation protocol's (:mod:`mis_pipeline.evaluate.runner`): each click
calls ``predictor.predict(all clicks so far, previous probability map)`` with zeros before the
first click, and the mask is the probability thresholded at ``evaluate.pred_threshold``
(``prob > threshold``). Undo restores the stored previous answer (it is not recomputed).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..evaluate.clicker import Click
from .hover import hover_region, leaf_at, supports_hover
from .images import ImageFolder
from .saving import MaskStore

__all__ = ["AnnotationSession", "SessionPool", "ClickResult", "UnknownSessionError", "ImageNotOpenError"]


class UnknownSessionError(KeyError):
    """The session id is unknown (never issued, or dropped from the pool)."""


class ImageNotOpenError(ValueError):
    """A request names an image other than the one the session has open."""


@dataclass(frozen=True)
class ClickResult:
    """What one click (or undo/reset/open) leaves: the mask and how long the predictor took."""

    mask: np.ndarray
    seconds: float


class AnnotationSession:
    """The state of one browser session (see the module docstring).

    Parameters
    ----------
    predictor : Predictor
        This session's own predictor instance.
    images : ImageFolder
    store : MaskStore
    threshold : float
        ``evaluate.pred_threshold``.
    """

    def __init__(self, predictor, images: ImageFolder, store: MaskStore, threshold: float) -> None:  # type: ignore[no-untyped-def]
        self.predictor = predictor
        self.images = images
        self.store = store
        self.threshold = float(threshold)
        self.lock = threading.Lock()
        self.index: int | None = None
        self.clicks: list[Click] = []
        self._probs: list[np.ndarray] = []
        self._initial: np.ndarray | None = None
        self._shape: tuple[int, int] = (0, 0)
        self._hover_cache: tuple[tuple[int, int], np.ndarray] | None = None
        self.last_used = time.monotonic()

    @property
    def can_hover(self) -> bool:
        return supports_hover(self.predictor)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the open image."""
        return self._shape

    def open(self, index: int) -> ClickResult:
        """Open image ``index``: predictor reset; the saved mask (if any) is shown, no clicks.

        Raises ImageError when the image cannot be decoded.
        """
        image = self.images.load(index)
        t0 = time.perf_counter()
        # a writable copy: the cached pixels stay read-only, and predictors may own their input
        self.predictor.reset(np.array(image))
        dt = time.perf_counter() - t0
        self.index = index
        self._shape = (int(image.shape[0]), int(image.shape[1]))
        self.clicks = []
        self._probs = [np.zeros(self._shape, dtype=np.float32)]
        saved = self.store.saved_mask(index)
        self._initial = saved if saved is not None and saved.shape == self._shape else None
        self._hover_cache = None
        return ClickResult(self.mask(), dt)

    def require(self, index: int) -> None:
        """Raise ImageNotOpenError unless image ``index`` is open in this session."""
        if self.index is None or self.index != index:
            raise ImageNotOpenError(f"image {index} is not open in this session (open: {self.index}); open it first")

    def check_pixel(self, row: int, col: int) -> None:
        h, w = self._shape
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"pixel (row={row}, col={col}) is outside the image of {h} rows x {w} cols")

    def mask(self) -> np.ndarray:
        """Current mask ``(H, W) bool``."""
        if not self.clicks and self._initial is not None:
            return self._initial
        return self._probs[-1] > self.threshold

    def click(self, row: int, col: int, positive: bool) -> ClickResult:
        """Add a click at pixel ``(row, col)`` and predict."""
        self.check_pixel(row, col)
        clicks = [*self.clicks, Click(int(row), int(col), bool(positive))]
        t0 = time.perf_counter()
        prob = np.asarray(self.predictor.predict(clicks, self._probs[-1]), dtype=np.float32)
        dt = time.perf_counter() - t0
        self.clicks = clicks
        self._probs.append(prob)
        self._hover_cache = None
        return ClickResult(self.mask(), dt)

    def undo(self) -> ClickResult:
        """Drop the last click; the previous answer comes back unchanged."""
        if self.clicks:
            self.clicks.pop()
            self._probs.pop()
            self._hover_cache = None
        return ClickResult(self.mask(), 0.0)

    def reset(self) -> ClickResult:
        """Drop every click and the shown saved mask: an empty answer."""
        self.clicks = []
        self._probs = self._probs[:1]
        self._initial = None
        self._hover_cache = None
        return ClickResult(self.mask(), 0.0)

    def hover(self, row: int, col: int) -> np.ndarray:
        """The merge-tree region a positive click at ``(row, col)`` would select (``(H, W)`` bool).

        Cached per leaf until the clicks change: moving within a patch costs nothing.
        """
        self.check_pixel(row, col)
        leaf = leaf_at(self.predictor, row, col)
        key = (leaf, len(self.clicks))
        if self._hover_cache is not None and self._hover_cache[0] == key:
            return self._hover_cache[1]
        region = hover_region(self.predictor, self.clicks, self._probs[-1], row, col)
        self._hover_cache = (key, region)
        return region

    def save(self) -> None:
        """Save the current mask of the open image."""
        if self.index is None:
            raise ImageNotOpenError("no image is open in this session")
        self.store.save(self.index, self.mask())


class SessionPool:
    """At most ``max_sessions`` sessions, least recently used dropped first.

    ``factory`` builds a new :class:`AnnotationSession` (with its own predictor).
    """

    def __init__(self, factory: Callable[[], AnnotationSession], max_sessions: int = 8) -> None:
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        self.factory = factory
        self.max_sessions = int(max_sessions)
        self._sessions: OrderedDict[str, AnnotationSession] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> tuple[str, AnnotationSession]:
        session = self.factory()
        sid = secrets.token_urlsafe(18)
        with self._lock:
            self._sessions[sid] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
        return sid, session

    def get(self, sid: str) -> AnnotationSession:
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                raise UnknownSessionError(sid)
            self._sessions.move_to_end(sid)
        session.last_used = time.monotonic()
        return session
