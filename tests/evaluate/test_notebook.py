"""notebooks/02_evaluation.ipynb executes top to bottom (nbclient, this interpreter's kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_evaluation.ipynb"


@pytest.mark.slow
@pytest.mark.data
def test_evaluation_notebook_runs(run_notebook, grabcut_dir):
    outputs = run_notebook(NOTEBOOK, timeout=1200)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "NoC@90" in text and "graphcut" in text and "mean best-node IoU" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the curves and the click sequences
