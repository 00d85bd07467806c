"""The predictor interface of the click protocol, and the two debugging predictors.

A predictor answers clicks on one image at a time::

    predictor.reset(image)                      # per-image setup (tree, features, model cache)
    prob = predictor.predict(clicks, prev_prob) # after each click

``image`` is ``(H, W, 3) uint8`` RGB; ``clicks`` is the list of every click so far (oldest first,
:class:`~mis_pipeline.evaluate.clicker.Click`, ``(row, col)`` pixels); ``prev_prob`` is the
previous output (``(H, W) float32``, zeros before the first click); the result is a foreground
probability map ``(H, W) float32`` in ``[0, 1]`` which the protocol thresholds.

Predictors that are *not* click-based segmenters but measuring devices (the oracle, the
debugging predictors) declare ``uses_ground_truth = True``; only for them does the runner pass
the target to :meth:`Predictor.reset`, and the results record it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from ..clicker import Click

__all__ = ["Predictor", "GroundTruthPredictor", "EmptyPredictor", "check_image"]


def check_image(image: np.ndarray) -> np.ndarray:
    """Validate an ``(H, W, 3) uint8`` RGB image (what every predictor's ``reset`` takes)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} dtype {image.dtype}")
    return image


class Predictor(ABC):
    """A click-based segmenter evaluated by the protocol (see the module docstring)."""

    #: registry name, recorded in results
    name: ClassVar[str] = ""
    #: True only for measuring devices that read the target (oracle, debugging predictors)
    uses_ground_truth: ClassVar[bool] = False

    @abstractmethod
    def reset(self, image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None) -> None:
        """Prepare for a new image ``(H, W, 3) uint8``; ``gt``/``ignore`` (bool (H, W)) are passed
        only to predictors with ``uses_ground_truth``."""

    @abstractmethod
    def predict(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        """Foreground probability ``(H, W) float32`` in [0, 1] after ``clicks`` (all so far)."""

    def warmup(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """One-time setup kept out of the timings (compiling kernels, loading caches): the runner
        calls it once per process before the first sample. Default: nothing."""

    def describe(self) -> dict[str, object]:
        """Settings recorded beside results (override to add the predictor's parameters)."""
        return {"name": self.name, "uses_ground_truth": self.uses_ground_truth}


class GroundTruthPredictor(Predictor):
    """Debugging predictor: returns the target itself (NoC is 1 at every target)."""

    name = "gt"
    uses_ground_truth = True

    def reset(self, image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None) -> None:
        check_image(image)
        if gt is None:
            raise ValueError("the 'gt' predictor needs the target mask in reset()")
        self._prob = np.asarray(gt, dtype=np.float32)

    def predict(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        return self._prob.copy()


class EmptyPredictor(Predictor):
    """Debugging predictor: predicts nothing whatever the clicks (NoC is the click budget)."""

    name = "empty"
    uses_ground_truth = False

    def reset(self, image: np.ndarray, gt: np.ndarray | None = None, ignore: np.ndarray | None = None) -> None:
        self._shape = check_image(image).shape[:2]

    def predict(self, clicks: Sequence[Click], prev_prob: np.ndarray) -> np.ndarray:
        return np.zeros(self._shape, dtype=np.float32)
