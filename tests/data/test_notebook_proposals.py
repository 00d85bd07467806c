"""notebooks/01_proposals.ipynb executes top to bottom (nbclient, this interpreter's kernel)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_proposals.ipynb"


def _kernel_for_this_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec in ``tmp_path`` that runs ipykernel with ``sys.executable`` (the test's env)."""
    pytest.importorskip("ipykernel", reason="ipykernel (a dev dependency) runs the notebook kernel")
    name = "mis-pipeline-test"
    spec_dir = tmp_path / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "mis-pipeline (tests)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # Agg would draw no inline figures
    return name


@pytest.mark.slow
@pytest.mark.data
def test_proposals_notebook_runs(tmp_path, monkeypatch, shared_data):
    nbformat = pytest.importorskip("nbformat", reason="nbformat (a dev dependency) reads the notebook")
    nbclient = pytest.importorskip("nbclient", reason="nbclient (a dev dependency) executes the notebook")
    kernel = _kernel_for_this_interpreter(tmp_path, monkeypatch)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=900, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "16 (16 ok, 0 failed)" in text
    assert "sampler root_children" in text and "sampler uniform" in text
    assert "bit-identical from (seed, epoch, index): True" in text
    assert "a different epoch gives another sample: True" in text
    assert "same as the direct call: True" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # histogram, samples grid, preview
