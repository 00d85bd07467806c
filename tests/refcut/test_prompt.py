"""RefCut reference branch: eq. 6 pooling, empty masks = plain model, one backbone call per reference."""

from __future__ import annotations

import pytest
import torch

from mis_pipeline.refcut import (
    RefCutModel,
    ReferencePromptGenerator,
    masked_average_pool,
    resize_mask_to_grid,
    token_grid,
)


class _TinyClickModel(torch.nn.Module):
    """The package's model contract in miniature: patch embedding (8 px), one transformer layer,
    prompt added to the embedded target tokens, a linear head; counts backbone calls."""

    def __init__(self, dim=16, patch=8):
        super().__init__()
        self.patch = patch
        self.embed = torch.nn.Conv2d(3, dim, patch, stride=patch)
        self.extra = torch.nn.Conv2d(3, dim, patch, stride=patch)
        self.backbone = torch.nn.TransformerEncoderLayer(dim, 2, 32, dropout=0.0, batch_first=True)
        self.head = torch.nn.Linear(dim, patch * patch)
        self.backbone_calls = 0

    def _backbone(self, x):
        self.backbone_calls += 1
        return self.backbone(x)

    def encode_reference(self, image):
        return self._backbone(self.embed(image).flatten(2).transpose(1, 2))

    def forward(self, image, prev_mask, points, labels, valid, *, prompt=None):
        b, _, h, w = image.shape
        maps = torch.cat([prev_mask, torch.zeros(b, 2, h, w)], 1)
        for i in range(b):
            for (r, c), lab, ok in zip(points[i].tolist(), labels[i].tolist(), valid[i].tolist(), strict=True):
                if ok:
                    maps[i, 1 if lab == 1 else 2, r, c] = 1
        tok = self.embed(image).flatten(2).transpose(1, 2) + self.extra(maps).flatten(2).transpose(1, 2)
        if prompt is not None:
            tok = tok + (prompt[:, None, :] if prompt.ndim == 2 else prompt)
        out = self.head(self._backbone(tok))  # (B, N, p*p)
        gh, gw = h // self.patch, w // self.patch
        out = out.reshape(b, gh, gw, self.patch, self.patch).permute(0, 1, 3, 2, 4)
        return out.reshape(b, 1, h, w)


def _randomise(module):
    torch.manual_seed(1)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.3)


def test_pool_is_the_mean_of_masked_tokens():
    torch.manual_seed(0)
    tokens = torch.randn(2, 12, 5)  # 3 x 4 grid
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    mask[0, 1, 1:3] = True
    mask[0, 2, 0] = True
    mask[1] = True
    pooled, present = masked_average_pool(tokens, resize_mask_to_grid(mask, (3, 4)))
    assert present.tolist() == [True, True]
    idx0 = mask[0].flatten().nonzero()[:, 0]
    assert torch.allclose(pooled[0], tokens[0, idx0].mean(0), atol=1e-6)
    assert torch.allclose(pooled[1], tokens[1].mean(0), atol=1e-6)
    # a pixel mask covering whole patches pools the same tokens (area resize)
    pix = mask.repeat_interleave(8, 1).repeat_interleave(8, 2)
    pooled_pix, _ = masked_average_pool(tokens, resize_mask_to_grid(pix, (3, 4)))
    assert torch.allclose(pooled_pix, pooled, atol=1e-6)
    # half a patch counts half (area) or by its centre (nearest)
    half = torch.zeros(1, 24, 32)
    half[0, 0:8, 0:4] = 1
    assert resize_mask_to_grid(half, (3, 4))[0, 0, 0].item() == pytest.approx(0.5)
    empty, present = masked_average_pool(tokens[:1], torch.zeros(1, 3, 4))
    assert not present[0] and torch.all(empty == 0)


def test_token_grid():
    assert token_grid((64, 48), 48) == (8, 6)
    with pytest.raises(ValueError, match="tokens"):
        token_grid((64, 48), 50)


def _inputs(b=2, hw=32):
    torch.manual_seed(0)
    image = torch.rand(b, 3, hw, hw)
    prev = torch.zeros(b, 1, hw, hw)
    points = torch.tensor([[[10, 12], [3, 3]]] * b)
    labels = torch.tensor([[1, 0]] * b)
    valid = torch.tensor([[True, True]] * b)
    return image, prev, points, labels, valid


def test_empty_masks_equal_the_plain_model():
    base = _TinyClickModel()
    model = RefCutModel(base, dim=16)
    _randomise(model)  # non-zero MLPs: an empty mask must still contribute nothing
    image, prev, points, labels, valid = _inputs()
    ref = torch.rand(2, 3, 32, 32)
    empty = torch.zeros(2, 32, 32, dtype=torch.bool)
    plain = base(image, prev, points, labels, valid)
    for pos, neg in ((empty, empty), (None, empty), (empty, None), (None, None)):
        prompt = model.reference_prompt(ref, pos, neg)
        assert torch.all(prompt == 0)
        assert torch.allclose(model(image, prev, points, labels, valid, prompt=prompt), plain, atol=1e-6)
    # a real mask changes the output, and positive and negative prompts come from different MLPs
    full = torch.ones(2, 32, 32, dtype=torch.bool)
    p_pos = model.reference_prompt(ref, full, None)
    p_neg = model.reference_prompt(ref, None, full)
    assert not torch.allclose(p_pos, p_neg)
    assert torch.allclose(model.reference_prompt(ref, full, full), p_pos + p_neg, atol=1e-6)
    assert not torch.allclose(model(image, prev, points, labels, valid, prompt=p_pos), plain)
    # per-sample: only sample 0 has a mask
    one = empty.clone()
    one[0] = True
    p = model.reference_prompt(ref, one, None)
    assert torch.allclose(p[0], p_pos[0], atol=1e-6) and torch.all(p[1] == 0)


def test_reference_features_are_computed_once_per_reference():
    base = _TinyClickModel()
    model = RefCutModel(base, dim=16)
    _randomise(model)
    image, prev, points, labels, valid = _inputs(b=1)
    ref = torch.rand(1, 3, 32, 32)
    pos = torch.zeros(1, 32, 32, dtype=torch.bool)
    pos[0, 8:24, 8:24] = True
    base.backbone_calls = 0
    prompt = model.reference_prompt(ref, pos, ~pos)  # both masks: still one backbone call
    assert base.backbone_calls == 1
    for _ in range(5):  # five clicks reuse the prompt: one backbone call each, for the target
        logits = model(image, prev, points, labels, valid, prompt=prompt)
        prev = torch.sigmoid(logits)
    assert base.backbone_calls == 1 + 5


def test_gradients_reach_both_mlps_and_zero_init_starts_as_plain():
    base = _TinyClickModel()
    model = RefCutModel(base, dim=16)
    image, prev, points, labels, valid = _inputs()
    ref = torch.rand(2, 3, 32, 32)
    pos = torch.zeros(2, 32, 32, dtype=torch.bool)
    pos[:, :16] = True
    prompt = model.reference_prompt(ref, pos, ~pos)
    assert torch.all(prompt == 0)  # output layers start at zero: fine-tuning starts from the plain model
    model(image, prev, points, labels, valid, prompt=prompt).sum().backward()
    assert model.rpg.pos_mlp[2].weight.grad.abs().sum() > 0
    assert model.rpg.neg_mlp[2].weight.grad.abs().sum() > 0


def test_generator_errors():
    with pytest.raises(ValueError, match="mask_resize"):
        resize_mask_to_grid(torch.zeros(1, 4, 4), (2, 2), mode="bicubic")
    with pytest.raises(ValueError, match="tokens"):
        masked_average_pool(torch.zeros(1, 5, 3), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="dim"):
        ReferencePromptGenerator(0)


# --------------------------------------------------------------------------- the package model
def _simpleclick(reference=True):
    from mis_pipeline.config import ModelConfig
    from mis_pipeline.model import build_model

    return build_model(ModelConfig(arch="vit_test", img_size=64, init="random", window=0,
                                   reference=reference)).eval()


def test_simpleclick_reference_branch_empty_masks_equal_plain():
    model = _simpleclick()
    _randomise(model.rpg)
    image, prev, points, labels, valid = _inputs(b=2, hw=64)
    ref = torch.rand(2, 3, 70, 70)  # not a multiple of the patch size: masks padded as the image
    empty = torch.zeros(2, 70, 70, dtype=torch.bool)
    with torch.no_grad():
        plain = model(image, prev, points, labels, valid)
        prompt = model.reference_prompt(ref, empty, empty)
        assert torch.all(prompt == 0)
        assert torch.allclose(model(image, prev, points, labels, valid, prompt=prompt), plain, atol=1e-6)
        full = torch.ones(2, 70, 70, dtype=torch.bool)
        p = model.reference_prompt(ref, full, None)
        assert p.shape == (2, model.embed_dim) and not torch.allclose(
            model(image, prev, points, labels, valid, prompt=p), plain)
        # eq. 6 on the padded grid: the full 70x70 mask pools every token weighted by its coverage
        tokens = model.encode_reference(ref)
        grid = model.token_grid((70, 70))
        w = torch.zeros(grid[0] * 16, grid[1] * 16)
        w[:70, :70] = 1
        cover = torch.nn.functional.avg_pool2d(w[None, None], 16)[0, 0].flatten()
        pooled = (tokens * cover[None, :, None]).sum(1) / cover.sum()
        assert torch.allclose(p, model.rpg.pos_mlp(pooled), atol=1e-5)


def test_simpleclick_reference_prompt_is_one_backbone_pass():
    model = _simpleclick()
    calls = []
    encode = model.encode
    model.encode = lambda *a, **k: (calls.append(1), encode(*a, **k))[1]
    ref = torch.rand(1, 3, 64, 64)
    pos = torch.zeros(1, 64, 64, dtype=torch.bool)
    pos[:, 10:40, 10:40] = True
    with torch.no_grad():
        model.reference_prompt(ref, pos, ~pos)
        assert len(calls) == 1
        model.reference_prompt(ref, None, None)
        assert len(calls) == 1


def test_attach_branch_keeps_outputs_and_checkpoints(tmp_path):
    from mis_pipeline.model import load_checkpoint, save_checkpoint
    from mis_pipeline.refcut import attach_reference_branch

    plain = _simpleclick(reference=False)
    with pytest.raises(Exception, match="model.reference"):
        plain.reference_prompt(torch.rand(1, 3, 64, 64), torch.ones(1, 64, 64))
    image, prev, points, labels, valid = _inputs(b=1, hw=64)
    with torch.no_grad():
        before = plain(image, prev, points, labels, valid)
        model = attach_reference_branch(plain)
        assert model.cfg.reference and hasattr(model, "rpg")
        p = model.reference_prompt(torch.rand(1, 3, 64, 64), torch.ones(1, 64, 64, dtype=torch.bool))
        assert torch.all(p == 0)  # zero-initialised output layers: the plain model at the start
        assert torch.allclose(model(image, prev, points, labels, valid, prompt=p), before, atol=1e-6)
    _randomise(model.rpg)
    save_checkpoint(model, tmp_path / "ck")
    loaded, meta = load_checkpoint(tmp_path / "ck")
    assert meta["model"]["reference"] is True
    for k, v in model.rpg.state_dict().items():
        assert torch.equal(loaded.rpg.state_dict()[k], v)
