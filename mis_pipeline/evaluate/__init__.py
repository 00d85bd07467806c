"""NoC evaluation: the standard click protocol, benchmark datasets, predictors, results, plots.

Quick use::

    from mis_pipeline.config import PipelineConfig
    from mis_pipeline.evaluate import open_dataset, evaluate_dataset, write_results

    ds = open_dataset("grabcut", "../shared/data/GrabCut")
    result = evaluate_dataset(ds, PipelineConfig(), predictor="graphcut")
    write_results(result, "out/grabcut_graphcut")
    result.summary()["noc"]["90"]

Modules: :mod:`.clicker` (the RITM clicker), :mod:`.metrics` (IoU, NoC/NoF), :mod:`.datasets`
and :mod:`.parts` (benchmark loaders; RefCut's part combinations and references),
:mod:`.predictors` (interface + registry: tree, graphcut, oracle, gt, empty), :mod:`.tree_mrf`
(exact two-state MRF on a merge tree), :mod:`.refine` (colour guided filter), :mod:`.runner`
(sequential / process-pool evaluation), :mod:`.results` (files, summary table), :mod:`.plots`
(IoU curves, clicks drawn on images).
"""

from .clicker import Click, Clicker, next_click
from .datasets import DATASET_NAMES, Dataset, Sample, open_dataset
from .metrics import iou, noc, noc_table
from .predictors import PREDICTOR_REGISTRY, Predictor, make_predictor
from .results import EvalResult, SampleResult, format_summary, load_summary, write_results
from .runner import evaluate_dataset, evaluate_sample

__all__ = [
    "Click",
    "Clicker",
    "next_click",
    "DATASET_NAMES",
    "Dataset",
    "Sample",
    "open_dataset",
    "iou",
    "noc",
    "noc_table",
    "PREDICTOR_REGISTRY",
    "Predictor",
    "make_predictor",
    "EvalResult",
    "SampleResult",
    "format_summary",
    "load_summary",
    "write_results",
    "evaluate_dataset",
    "evaluate_sample",
]
