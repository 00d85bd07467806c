"""SIGKILL the preprocess process at 10 instants, rerun each time: the store ends identical
to an uninterrupted run, with exactly one record per image."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mis_pipeline.config import PipelineConfig, from_dict
from mis_pipeline.pipeline import preprocess
from mis_pipeline.store import TreeStore

OVERRIDES = {"features": {"backbone": "colour_texture"}, "preprocess": {"executor": "local", "batch_size": 4}}
SETS = ["--set", "features.backbone=colour_texture", "--set", "preprocess.batch_size=4"]


def _committed(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["committed"]["records"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_sigkill_at_ten_instants_then_resume(tmp_path, generated_corpus, cli_env, store_contents):
    cfg = from_dict(PipelineConfig, OVERRIDES)
    reference = tmp_path / "reference.zarr"
    ref = preprocess(generated_corpus, reference, cfg)
    assert ref.n_ok == 100 and ref.exit_code == 0

    store = tmp_path / "crashed.zarr"
    cmd = [sys.executable, "-m", "stages.preprocess", str(generated_corpus), "--out", str(store),
           "--executor", "local", "--no-progress", *SETS]
    rng = np.random.default_rng(7)
    kills = 0
    for _ in range(25):
        if kills == 10:
            break
        before = _committed(store)
        proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # wait for this run to commit something new, then kill at a random instant after it
        # (within about one batch's work: since the codec kernels load from Numba's cache a run
        # commits every ~70 ms, and a longer window let the 100 images finish in 9 kills)
        deadline = time.monotonic() + 60
        while _committed(store) <= before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(float(rng.uniform(0.0, 0.05)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        proc.stderr.close()
        # after every kill the store opens and every committed tree decodes
        if (store / "zarr.json").exists():
            st = TreeStore.open(store)
            assert len(set(st.image_ids)) == len(st)
            for _ in st:
                pass
    assert kills == 10, f"only {kills} runs could be killed before the corpus finished"
    done = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    got, want = store_contents(store), store_contents(reference)
    assert got.keys() == want.keys() and len(got) == 100
    assert got == want
    import zarr

    ids = zarr.open(str(store), mode="r")["records/image_id"][:].tolist()
    assert sorted(ids) == sorted(want)  # exactly one row per image, no leftovers
