"""Evaluation stage entry point: ``python -m stages.evaluate --dataset NAME --data PATH --out DIR [...]``.

The same command as ``mis evaluate`` (same options and outputs: ``DIR/summary.json``,
``DIR/per_sample.csv``, ``DIR/per_sample.json``, the resolved configuration), runnable as a
script, e.g. handed to a Ray cluster::

    ray job submit --working-dir . -- python -m stages.evaluate \\
        --dataset grabcut --data /data/GrabCut --predictor tree --out /results/grabcut_tree

Exit status: 0 done, 2 error (bad configuration, missing dataset files).
"""

from __future__ import annotations

import sys

from mis_pipeline.cli import main


def run(argv: list[str] | None = None) -> int:
    """Run ``mis evaluate`` with ``argv`` (default: the process arguments)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return main(["evaluate", *args])


if __name__ == "__main__":
    sys.exit(run())
