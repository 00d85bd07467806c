"""notebooks/02_evaluation.ipynb executes top to bottom (nbclient, this interpreter's kernel)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_evaluation.ipynb"


def _kernel_for_this_interpreter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec in ``tmp_path`` that starts ipykernel with ``sys.executable``, so the notebook
    runs in the environment the tests run in whatever kernels are installed elsewhere."""
    pytest.importorskip("ipykernel", reason="ipykernel (a dev dependency) runs the notebook kernel")
    name = "mis-pipeline-test"
    spec_dir = tmp_path / "jupyter" / "kernels" / name
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "mis-pipeline (tests)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    # A kernel started with MPLBACKEND=Agg (as CI sets) would draw no inline figures.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    from jupyter_client.kernelspec import KernelSpecManager

    assert name in KernelSpecManager().find_kernel_specs()
    return name


@pytest.mark.slow
@pytest.mark.data
def test_evaluation_notebook_runs(tmp_path, monkeypatch, grabcut_dir):
    nbformat = pytest.importorskip("nbformat", reason="nbformat (a dev dependency) reads the notebook")
    nbclient = pytest.importorskip("nbclient", reason="nbclient (a dev dependency) executes the notebook")
    kernel = _kernel_for_this_interpreter(tmp_path, monkeypatch)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=1200, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "NoC@90" in text and "graphcut" in text and "mean best-node IoU" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the curves and the click sequences
