"""Iterative Click Loss: weights, step count, gradient-carrying steps (CFR-ICL eq. 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mis_pipeline.config import IclConfig
from mis_pipeline.errors import ConfigError
from mis_pipeline.losses.icl import (
    draw_icl_steps,
    icl_from_config,
    icl_rollout,
    icl_weights,
    iterative_click_loss,
)


def test_weights_are_the_first_n_betas():
    assert icl_weights(3) == (1.0, 2.0, 3.0)
    assert icl_weights(2) == (1.0, 2.0)
    assert icl_weights(1, (5, 7)) == (5.0,)
    with pytest.raises(ConfigError, match="icl.weights"):
        icl_weights(4)
    with pytest.raises(ConfigError, match="icl.steps"):
        icl_weights(0)


def test_draw_steps_uniform_in_one_to_max():
    rng = np.random.default_rng(0)
    draws = [draw_icl_steps(rng, 3) for _ in range(3000)]
    counts = np.bincount(draws, minlength=4)
    assert counts[0] == 0 and set(draws) == {1, 2, 3}
    assert np.all(np.abs(counts[1:] / 3000 - 1 / 3) < 0.04)
    assert {draw_icl_steps(rng, 3, random_steps=False) for _ in range(10)} == {3}
    n, w, paper = icl_from_config(IclConfig(steps=2, random_steps=False), rng)
    assert (n, w, paper) == (2, (1.0, 2.0), False)


def test_weighted_sum():
    losses = [torch.tensor(1.0), torch.tensor(0.5), torch.tensor(0.25)]
    total, terms = iterative_click_loss(losses, (1, 2, 3))
    assert float(total) == pytest.approx(1 + 1 + 0.75)
    assert terms == {"icl_0": 1.0, "icl_1": 0.5, "icl_2": 0.25}


class _Toy(torch.nn.Module):
    """logits = a * (2 prev - 1) + b * (number of valid clicks); records every call."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.7))
        self.b = torch.nn.Parameter(torch.tensor(0.3))
        self.calls: list[tuple[torch.Tensor, torch.Tensor, bool]] = []

    def forward(self, points, labels, valid, prev):
        self.calls.append((prev.clone(), valid.clone(), torch.is_grad_enabled()))
        n = valid.sum(dim=1).float().view(-1, 1, 1, 1)
        return self.a * (2 * prev - 1) + self.b * n


def _add_click(prob, points, labels, valid):
    valid = valid.clone()
    free = (~valid).float().argmax(dim=1)
    valid[torch.arange(valid.shape[0]), free] = True
    return points, labels, valid


def _setup():
    torch.manual_seed(0)
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    points = torch.zeros(2, 6, 2, dtype=torch.int64)
    labels = torch.zeros(2, 6, dtype=torch.int64)
    valid = torch.zeros(2, 6, dtype=torch.bool)
    valid[:, 0] = True
    loss_fn = lambda logits: torch.nn.functional.binary_cross_entropy_with_logits(logits, target)  # noqa: E731
    return target, points, labels, valid, loss_fn


@pytest.mark.parametrize("paper", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_rollout_gradient_is_weighted_sum_of_single_forward_gradients(n, paper):
    _, points, labels, valid, loss_fn = _setup()
    model = _Toy()
    res = icl_rollout(model, loss_fn, _add_click, points, labels, valid, torch.zeros(2, 1, 8, 8),
                      num_steps=n, paper_indexing=paper)
    res.loss.backward()
    assert res.steps == n
    calls = model.calls
    assert len(calls) == n + int(paper)
    # In the paper's indexing the first forward (Y^0) runs without gradient.
    assert [c[2] for c in calls] == [False] * int(paper) + [True] * n
    # One click more per forward but the last; the first forward sees the initial clicks.
    assert [int(c[1].sum()) for c in calls] == [2 * (1 + i) for i in range(len(calls))]
    assert int(res.valid.sum()) == 2 * len(calls)
    # Reference: each gradient-carrying forward recomputed alone on its recorded (detached)
    # inputs, weighted 1, 2, 3: equal to the rollout's gradient only if prev masks are detached.
    ref = _Toy()
    total = 0.0
    grad_calls = calls[int(paper):]
    for w, (prev, v, _) in zip((1.0, 2.0, 3.0), grad_calls, strict=False):
        total = total + w * loss_fn(ref(points, labels, v, prev))
    total.backward()
    assert res.loss.item() == pytest.approx(float(total.detach()), rel=1e-6)
    assert float(model.a.grad) == pytest.approx(float(ref.a.grad), rel=1e-5)
    assert float(model.b.grad) == pytest.approx(float(ref.b.grad), rel=1e-5)
    # The previous mask of each step is the sigmoid of the step before (soft feedback).
    for (prev_next, _, _), (prev, v, _) in zip(calls[1:], calls[:-1], strict=True):
        with torch.no_grad():
            expected = torch.sigmoid(_Toy()(points, labels, v, prev))
        assert torch.allclose(prev_next, expected)


def test_rollout_differs_from_last_step_only_loss():
    """ICL is not the plain RITM loss on the final output (eq. 2) unless n = 1."""
    _, points, labels, valid, loss_fn = _setup()
    m1 = _Toy()
    r = icl_rollout(m1, loss_fn, _add_click, points, labels, valid, torch.zeros(2, 1, 8, 8), num_steps=3)
    t = r.terms
    assert set(t) == {"icl_0", "icl_1", "icl_2"}
    assert r.loss.item() == pytest.approx(t["icl_0"] + 2 * t["icl_1"] + 3 * t["icl_2"], rel=1e-6)
    assert t["icl_2"] == pytest.approx(loss_fn(r.logits).item())
    assert r.loss.item() != pytest.approx(loss_fn(r.logits).item())
    r1 = icl_rollout(_Toy(), loss_fn, _add_click, points, labels, valid, torch.zeros(2, 1, 8, 8), num_steps=1)
    assert r1.loss.item() == pytest.approx(loss_fn(r1.logits).item())


class _Ctx:
    """The parts of the trainer's StepContext a loss hook uses."""

    def __init__(self, model, target):
        self.model, self.target, self.clicks = model, target, 0

    def forward(self, points, labels, valid, prev):
        return self.model(points, labels, valid, prev)

    def add_click(self, prob, points, labels, valid):
        self.clicks += 1
        return _add_click(prob, points, labels, valid)

    def loss_fn(self, logits):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, self.target)
        return loss, {"bce": loss.item()}

    def rng(self, tag):
        return np.random.default_rng(tag)


def test_loss_hook_uses_the_step_context():
    from mis_pipeline.losses.icl import IclLossHook

    target, points, labels, valid, _ = _setup()
    model = _Toy()
    ctx = _Ctx(model, target)
    loss, terms = IclLossHook(IclConfig(random_steps=False))(ctx, points, labels, valid, torch.zeros(2, 1, 8, 8))
    assert terms["icl_steps"] == 3.0 and len(model.calls) == 3 and ctx.clicks == 2
    assert loss.item() == pytest.approx(terms["icl_0"] + 2 * terms["icl_1"] + 3 * terms["icl_2"], rel=1e-6)
    loss.backward()
    assert model.a.grad is not None
