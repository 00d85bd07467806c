"""notebooks/01_proposals.ipynb executes top to bottom (nbclient, this interpreter's kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_proposals.ipynb"


@pytest.mark.slow
@pytest.mark.data
def test_proposals_notebook_runs(run_notebook, shared_data):
    outputs = run_notebook(NOTEBOOK, timeout=900)
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "16 (16 ok, 0 failed)" in text
    assert "sampler root_children" in text and "sampler uniform" in text
    assert "bit-identical from (seed, epoch, index): True" in text
    assert "a different epoch gives another sample: True" in text
    assert "same as the direct call: True" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # histogram, samples grid, preview
