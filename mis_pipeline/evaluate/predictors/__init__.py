"""Predictors of the click protocol behind one interface, built by name from a registry.

==============  ==============================================================================
name            what it is
==============  ==============================================================================
``tree``        zero-training predictor: answers clicks with nodes of the image's merge tree
``graphcut``    classical baseline: OpenCV GrabCut seeded from the clicks
``oracle``      the single tree node with the best IoU (reads the target: a measuring device)
``gt``          debugging: returns the target (NoC 1)
``empty``       debugging: returns nothing (NoC = click budget)
``model``       a trained SimpleClick checkpoint (``mis train``) with SimpleClick's inference
==============  ==============================================================================

Each class takes its settings from :class:`~mis_pipeline.config.PipelineConfig` through
``from_config``; modules are imported only when their predictor is built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .base import EmptyPredictor, GroundTruthPredictor, Predictor, check_image

if TYPE_CHECKING:
    from ...config import PipelineConfig

__all__ = [
    "Predictor",
    "GroundTruthPredictor",
    "EmptyPredictor",
    "check_image",
    "PREDICTOR_REGISTRY",
    "make_predictor",
]

#: name -> (module under this package, class name)
PREDICTOR_REGISTRY: dict[str, tuple[str, str]] = {
    "tree": ("tree", "TreePredictor"),
    "graphcut": ("graphcut", "GraphCutPredictor"),
    "oracle": ("oracle", "OraclePredictor"),
    "gt": ("base", "GroundTruthPredictor"),
    "empty": ("base", "EmptyPredictor"),
    "model": ("model", "ModelPredictor"),
}


def predictor_class(name: str) -> type[Predictor]:
    """The class registered as ``name``."""
    from ...errors import ConfigError

    if name not in PREDICTOR_REGISTRY:
        raise ConfigError("evaluate.predictor", name, "one of " + ", ".join(repr(n) for n in PREDICTOR_REGISTRY))
    module, attr = PREDICTOR_REGISTRY[name]
    cls = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
    return cls


def make_predictor(name: str, cfg: PipelineConfig | None = None) -> Predictor:
    """Build predictor ``name`` with the settings of ``cfg`` (defaults when None)."""
    from ...config import PipelineConfig

    cls = predictor_class(name)
    cfg = cfg if cfg is not None else PipelineConfig()
    from_config = getattr(cls, "from_config", None)
    return from_config(cfg) if from_config is not None else cls()
