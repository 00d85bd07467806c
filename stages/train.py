"""Training stage entry point: ``python -m stages.train --mode mis --store STORE --out RUN [...]``.

The same command as ``mis train`` (same options, outputs and exit status: 0 finished or stopped
at its time budget, 2 error, 130 interrupted with the state saved), runnable as a script handed
to a Ray cluster, where ``--workers N`` runs Ray Train with N workers (one GPU each when the
cluster has GPUs)::

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python -m stages.train --mode mis --store /shared/trees.zarr --out /shared/runs/mis \\
        --config mis_sbd --workers 8

Inside a Ray job ``RAY_ADDRESS`` is set, so the trainer joins that cluster. The run directory
must be on storage every worker sees (rank 0 writes it; every worker reads it to resume).
"""

from __future__ import annotations

import sys

from mis_pipeline.cli import main


def run(argv: list[str] | None = None) -> int:
    """Run ``mis train`` with ``argv`` (default: the process arguments)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return main(["train", *args])


if __name__ == "__main__":
    sys.exit(run())
