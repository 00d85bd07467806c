"""Shared fixtures: the real-data folder beside the project root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mis_pipeline.merge.tree import MergeTree

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (GrabCut, CarParts, WeizmannHorse). CI always has it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (expected beside the project root)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def grabcut_dir(shared_data: Path) -> Path:
    return shared_data / "GrabCut"


@pytest.fixture
def run_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``run_notebook(path, timeout)`` executes a notebook top to bottom with this interpreter's
    kernel and returns the outputs of its code cells; an error output fails the test.

    The kernelspec lives in ``tmp_path`` and starts ipykernel with ``sys.executable``, so the
    notebook runs in the tests' environment whatever kernels are installed elsewhere.
    nbformat, nbclient and ipykernel are dev dependencies: a missing one is an error.
    """
    import json
    import sys

    import nbclient
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager

    name = "mis-pipeline-test"
    spec_dir = tmp_path / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "mis-pipeline (tests)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # A kernel started with MPLBACKEND=Agg (as CI sets) would draw no inline figures.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    assert name in KernelSpecManager().find_kernel_specs()

    def run(path: Path, timeout: int) -> list:
        nb = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(
            nb, kernel_name=name, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
        ).execute()
        outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"]
        return outputs

    return run


def random_grid_tree(gh: int, gw: int, rng: np.random.Generator) -> MergeTree:
    """A random merge tree on a ``gh x gw`` grid: each step merges a random touching pair."""
    n = gh * gw
    label = np.arange(n)
    edges = [(r * gw + c, r * gw + c + 1) for r in range(gh) for c in range(gw - 1)]
    edges += [(r * gw + c, (r + 1) * gw + c) for r in range(gh - 1) for c in range(gw)]
    children = np.zeros((n - 1, 2), np.int32)
    for k in range(n - 1):
        while True:
            u, v = edges[int(rng.integers(len(edges)))]
            a, b = label[u], label[v]
            if a != b:
                break
        if rng.random() < 0.5:
            a, b = b, a
        children[k] = (a, b)
        label[(label == a) | (label == b)] = n + k
    cost = np.cumsum(rng.exponential(1.0, n - 1)).astype(np.float32) * rng.uniform(0.5, 2.0, n - 1).astype(np.float32)
    return MergeTree(children=children, cost=cost, grid_shape=(gh, gw))


@pytest.fixture
def random_tree():
    """``random_tree(gh, gw, rng) -> MergeTree`` (see :func:`random_grid_tree`)."""
    return random_grid_tree
