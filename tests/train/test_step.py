"""The step function: RITM's no-grad click rounds, the fed-back mask, hooks, accumulation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mis_pipeline.config import ModelConfig
from mis_pipeline.model import build_model
from mis_pipeline.train import schedule
from mis_pipeline.train.step import (
    StepContext,
    TrainBatch,
    click_rounds,
    micro_step,
    train_step,
)


def _model() -> torch.nn.Module:
    return build_model(ModelConfig(arch="vit_test", init="random", img_size=32, window=0)).train()


def _batch(b: int = 3, hw: int = 32, seed: int = 0) -> TrainBatch:
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, hw, hw, generator=g)
    target = torch.zeros(b, 1, hw, hw)
    target[:, :, 8:24, 6:20] = 1
    k = 4
    points = torch.zeros(b, k, 2, dtype=torch.long)
    points[:, 0] = torch.tensor([15, 12])
    labels = torch.zeros(b, k, dtype=torch.long)
    labels[:, 0] = 1
    valid = torch.zeros(b, k, dtype=torch.bool)
    valid[:, 0] = True
    return TrainBatch(image, target, points, labels, valid, np.zeros(b, np.int64), np.arange(b, dtype=np.int64), {})


def _bce(logits, batch):
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, batch.target)
    return loss, {"bce": float(loss.detach())}


class _Recorder:
    """Forward pre-hook: the model's mode and the fed-back mask / clicks of every forward."""

    def __init__(self, model):
        self.calls = []
        model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        image, prev, points, labels, valid = args
        self.calls.append({"training": module.training, "grad": torch.is_grad_enabled(),
                           "prev": prev.detach().clone(), "valid": valid.clone(), "points": points.clone(),
                           "labels": labels.clone(), "prompt": kwargs.get("prompt")})


def test_rounds_run_in_eval_mode_without_grad_and_feed_back_the_soft_mask():
    model = _model()
    rec = _Recorder(model)
    outs = []
    model.register_forward_hook(lambda m, a, o: outs.append(o.detach().clone()))
    batch = _batch()
    ctx = StepContext(model=model, batch=batch, base_loss=_bce, seed=0, step=0)
    points, labels, valid, prev = click_rounds(ctx, 3)
    assert model.training  # restored
    assert [c["training"] for c in rec.calls] == [False] * 3
    assert not any(c["grad"] for c in rec.calls)
    assert torch.count_nonzero(rec.calls[0]["prev"]) == 0  # zeros at the start
    for r in (1, 2):  # round r sees the sigmoid of round r-1's logits
        torch.testing.assert_close(rec.calls[r]["prev"], torch.sigmoid(outs[r - 1]))
    torch.testing.assert_close(prev, torch.sigmoid(outs[2]))
    # at most one click per round and sample (none where the prediction had no error region)
    added = valid.sum(1) - batch.valid.sum(1)
    assert added.min() >= 1 and added.max() <= 3
    assert ctx.round == 3


def test_each_new_click_lies_in_the_error_region_of_the_previous_prediction():
    model = _model()
    outs = []
    model.register_forward_hook(lambda m, a, o: outs.append(o.detach().clone()))
    batch = _batch()
    ctx = StepContext(model=model, batch=batch, base_loss=_bce, seed=0, step=0)
    points, labels, valid, _ = click_rounds(ctx, 1)
    prob = torch.sigmoid(outs[0])[:, 0]
    gt = batch.target[:, 0] > 0.5
    new = valid & ~batch.valid
    for b in range(batch.image.shape[0]):
        for slot in torch.nonzero(new[b]).flatten().tolist():
            r, c = points[b, slot].tolist()
            if labels[b, slot] == 1:
                assert gt[b, r, c] and prob[b, r, c] < 0.49  # false negative
            else:
                assert not gt[b, r, c] and prob[b, r, c] > 0.49  # false positive


def test_no_rounds_means_zero_mask_and_the_sampled_clicks():
    model = _model()
    batch = _batch()
    ctx = StepContext(model=model, batch=batch, base_loss=_bce, seed=0, step=0)
    points, labels, valid, prev = click_rounds(ctx, 0)
    assert torch.count_nonzero(prev) == 0
    assert torch.equal(points, batch.points) and torch.equal(valid, batch.valid)


def test_clicks_depend_on_the_sample_keys_not_the_batch_composition():
    """A sample's round clicks are the same alone or inside a batch (per-sample generators)."""
    model = _model().eval()  # eval: dropout off, so predictions do not depend on batch-mates
    batch = _batch(3)
    full = click_rounds(StepContext(model=model, batch=batch, base_loss=_bce, seed=0, step=0), 2)
    one = TrainBatch(*(t[1:2] for t in batch[:5]), batch.epoch[1:2], batch.index[1:2], {})
    alone = click_rounds(StepContext(model=model, batch=one, base_loss=_bce, seed=0, step=0), 2)
    assert torch.equal(full[0][1:2], alone[0]) and torch.equal(full[2][1:2], alone[2])


def test_loss_hook_and_prompt_reach_every_forward():
    model = _model()
    rec = _Recorder(model)
    seen = {}

    def prompt_fn(m, batch):
        return torch.zeros(batch.image.shape[0], 32)

    def hook(ctx, points, labels, valid, prev):
        seen["ctx"] = ctx
        logits = ctx.forward(points, labels, valid, prev)
        points, labels, valid = ctx.add_click(torch.sigmoid(logits.detach()), points, labels, valid)
        logits2 = ctx.forward(points, labels, valid, torch.sigmoid(logits.detach()))
        l1, _ = ctx.loss_fn(logits)
        l2, _ = ctx.loss_fn(logits2)
        return l1 + 2 * l2, {"a": float(l1.detach()), "b": float(l2.detach())}

    loss, terms = micro_step(model, _batch(), loss_fn=_bce, seed=0, step=0, num_rounds=2,
                             loss_hook=hook, prompt_fn=prompt_fn)
    assert set(terms) == {"a", "b"} and loss.requires_grad
    assert len(rec.calls) == 4 and all(c["prompt"] is not None for c in rec.calls)
    assert [c["training"] for c in rec.calls] == [False, False, True, True]
    assert seen["ctx"].round == 3  # two no-grad rounds, one click added by the hook


def test_accumulated_micro_batches_give_the_full_batch_gradient():
    """accumulate=2 over two halves == accumulate=1 over the whole batch (mean loss)."""
    batch = _batch(4)

    def halves():
        for k in range(2):
            s = slice(2 * k, 2 * k + 2)
            yield (schedule.MicroBatch(1, k, k, np.arange(2 * k, 2 * k + 2)),
                   TrainBatch(*(t[s] for t in batch[:5]), batch.epoch[s], batch.index[s], {}))

    grads = []
    for micro, acc in ((halves(), 2), ([(schedule.MicroBatch(1, 0, 0, np.arange(4)), batch)], 1)):
        model = _model().eval()  # no dropout: both splits see the same function
        model.train = lambda mode=True, m=model: m  # keep eval mode through the step
        opt = torch.optim.SGD(model.parameters(), lr=0.0)
        train_step(model, opt, micro, step=1, accumulate=acc, loss_fn=_bce, seed=0, max_rounds=0)
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def test_train_step_checks_its_micro_batches():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    batch = _batch(2)
    with pytest.raises(ValueError, match="micro-batch of step 3"):
        train_step(model, opt, [(schedule.MicroBatch(3, 0, 0, np.arange(2)), batch)], step=1,
                   accumulate=1, loss_fn=_bce, seed=0, max_rounds=0)
    with pytest.raises(ValueError, match="expected 2"):
        train_step(model, opt, [(schedule.MicroBatch(1, 0, 0, np.arange(2)), batch)], step=1,
                   accumulate=2, loss_fn=_bce, seed=0, max_rounds=0)
