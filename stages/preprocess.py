"""Preprocessing stage entry point: ``python -m stages.preprocess INPUT --out STORE [...]``.

The same command as ``mis preprocess`` (same options, same exit status: 0 completed,
3 completed with failures, 2 error), runnable as a script handed to a Ray cluster::

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python -m stages.preprocess /data/images --out /data/trees.zarr --set features.backbone=dino_vits8

Inside a Ray job, ``RAY_ADDRESS`` is set, so the pipeline joins that cluster.
"""

from __future__ import annotations

import sys

from mis_pipeline.cli import main


def run(argv: list[str] | None = None) -> int:
    """Run ``mis preprocess`` with ``argv`` (default: the process arguments)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return main(["preprocess", *args])


if __name__ == "__main__":
    sys.exit(run())
