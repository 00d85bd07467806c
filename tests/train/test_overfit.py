"""Overfit check: the whole path (data, clicks, rounds, MIS loss, optimiser) can learn.

On 8 fixed training samples a tiny model must reach a mean IoU >= 0.9 against its own
proposals (measured at 100 steps in development; the test allows 200).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_helpers import smoke_config

from mis_pipeline.data import ProposalDataset, collate
from mis_pipeline.model import build_model
from mis_pipeline.train import schedule
from mis_pipeline.train.loop import build_loss
from mis_pipeline.train.step import to_train_batch, train_step


def _mean_iou(model, batch) -> float:
    model.eval()
    with torch.no_grad():
        logits = model(batch.image, torch.zeros_like(batch.target), batch.points, batch.labels, batch.valid)
    model.train()
    pred, gt = torch.sigmoid(logits) > 0.5, batch.target > 0.5
    inter = (pred & gt).sum((1, 2, 3)).float()
    union = (pred | gt).sum((1, 2, 3)).clamp(min=1).float()
    return float((inter / union).mean())


@pytest.mark.slow
def test_tiny_model_overfits_eight_proposals(tree_store):
    cfg = smoke_config()
    ds = ProposalDataset(tree_store, seed=0, config=cfg.data)
    raw = collate([ds.sample(i, 0) for i in range(8)])
    batch = to_train_batch(raw, np.arange(8), ds.epoch_size, "cpu")
    gt = batch.target > 0.5
    full = (gt.sum((1, 2, 3)).float() / gt[0].numel()).mean()
    assert 0.05 < float(full) < 0.6  # real proposals: predicting all foreground is far from 0.9
    model = build_model(cfg.model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = build_loss(cfg)
    start = _mean_iou(model, batch)
    best = start
    for step in range(200):
        micro = [(schedule.MicroBatch(step, 0, 0, np.arange(8)), batch)]
        train_step(model, optimizer, micro, step=step, accumulate=1, loss_fn=loss_fn, seed=0,
                   max_rounds=cfg.train.max_num_next_clicks)
        if step % 25 == 24:
            best = max(best, _mean_iou(model, batch))
            if best >= 0.9:
                break
    assert best >= 0.9, f"mean IoU {best:.3f} after {step + 1} steps (start {start:.3f})"
