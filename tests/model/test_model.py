"""SimpleClick model: shapes, click conditioning, windowed attention, initialisation, hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mis_pipeline.clicks import click_maps
from mis_pipeline.config import MODEL_ARCHS, ModelConfig, from_dict
from mis_pipeline.errors import ConfigError, WeightsError
from mis_pipeline.model import ARCHS, build_model
from mis_pipeline.model.backbone import build_vit, global_block_ids, run_blocks


def _cfg(**kw) -> ModelConfig:
    base = {"arch": "vit_test", "init": "random", "img_size": 64}
    base.update(kw)
    return from_dict(ModelConfig, base)


def _inputs(b: int, h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, h, w, generator=g)
    prev = torch.zeros(b, 1, h, w)
    points = torch.tensor([[[h // 2, w // 2], [1, 1]]] * b, dtype=torch.int32)
    labels = torch.tensor([[1, 0]] * b, dtype=torch.int8)
    valid = torch.tensor([[True, False]] * b)
    return image, prev, points, labels, valid


def test_registry_agrees_with_config():
    assert tuple(ARCHS) == MODEL_ARCHS


@pytest.mark.parametrize("hw", [(64, 64), (45, 71), (33, 17), (97, 130)])
def test_output_shape_for_any_input_size(hw):
    model = build_model(_cfg(window=32)).eval()
    with torch.no_grad():
        out = model(*_inputs(2, *hw))
    assert out.shape == (2, 1, *hw) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_click_maps_change_the_output():
    model = build_model(_cfg()).eval()
    image, prev, points, labels, valid = _inputs(1, 64, 64)
    with torch.no_grad():
        a = model(image, prev, points, labels, valid)
        b = model(image, prev, points, labels, torch.zeros_like(valid))  # no click
        c = model(image, prev, points, 1 - labels, valid)  # the same click, negative
        d = model(image, torch.ones_like(prev), points, labels, valid)  # a different previous mask
    assert not torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, d)


def test_forward_builds_the_disk_maps_of_the_clicks():
    model = build_model(_cfg()).eval()
    image, prev, points, labels, valid = _inputs(2, 40, 52)
    maps = np.stack([click_maps(points[i].numpy(), labels[i].numpy(), valid[i].numpy(), (40, 52), 5) for i in range(2)])
    with torch.no_grad():
        a = model(image, prev, points, labels, valid)
        b = model.forward_maps(image, torch.cat([prev, torch.from_numpy(maps)], 1))
        tokens = model.embed_image(image)
        c = model.forward_maps(None, torch.cat([prev, torch.from_numpy(maps)], 1), image_tokens=tokens)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_uint8_image_is_scaled():
    model = build_model(_cfg()).eval()
    image, *rest = _inputs(1, 32, 32)
    u8 = (image * 255).round().to(torch.uint8)
    with torch.no_grad():
        assert torch.allclose(model(u8, *rest), model(u8.float() / 255, *rest))


def test_global_blocks_follow_simpleclick():
    assert global_block_ids(12) == {5, 11}
    assert global_block_ids(8) == {1, 3, 5, 7}
    assert global_block_ids(24) == {5, 11, 17, 23}
    assert global_block_ids(2) == {0, 1}


@pytest.mark.parametrize("grid", [(4, 6), (5, 3)])
def test_window_attention_matches_an_explicit_window_loop(grid):
    from mis_pipeline.model.arch import ViTArch

    arch = ViTArch(16, 16, 8, 2, 2.0, (4, 4, 4, 4), 4)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        vit = build_vit(arch, 64).eval()
    gh, gw = grid
    x = torch.randn(2, gh * gw, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = run_blocks(vit, x, grid, 2)
        # reference: a zero-padded (even) grid, each 2x2 window run on its own, the padding
        # kept through consecutive windowed blocks and dropped before each global block
        hp, wp = gh + gh % 2, gw + gw % 2
        ref = x.view(2, gh, gw, 16)
        glob = global_block_ids(8)
        padded = None
        for i, blk in enumerate(vit.blocks):
            if i in glob:
                if padded is not None:
                    ref = padded[:, :gh, :gw]
                    padded = None
                ref = blk(ref.reshape(2, gh * gw, 16)).view(2, gh, gw, 16)
            else:
                if padded is None:
                    padded = torch.zeros(2, hp, wp, 16)
                    padded[:, :gh, :gw] = ref
                out = padded.clone()
                for r in range(0, hp, 2):
                    for c in range(0, wp, 2):
                        win = padded[:, r : r + 2, c : c + 2].reshape(2, 4, 16)
                        out[:, r : r + 2, c : c + 2] = blk(win).view(2, 2, 2, 16)
                padded = out
        assert padded is None  # the last block is global
    assert torch.allclose(got, ref.reshape(2, gh * gw, 16), atol=1e-5)


def test_prompt_and_reference_tokens():
    model = build_model(_cfg()).eval()
    image, prev, points, labels, valid = _inputs(2, 48, 64)
    n, d = 3 * 4, model.embed_dim
    with torch.no_grad():
        base = model(image, prev, points, labels, valid)
        zero = model(image, prev, points, labels, valid, prompt=torch.zeros(2, d))
        some = model(image, prev, points, labels, valid, prompt=torch.ones(2, n, d))
        ref = model.encode_reference(image)
    assert torch.equal(base, zero) and not torch.equal(base, some)
    assert ref.shape == (2, n, d) and model.token_grid((48, 64)) == (3, 4)
    with pytest.raises(ValueError, match="prompt"):
        model(image, prev, points, labels, valid, prompt=torch.ones(2, n + 1, d))


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(_cfg(init_seed=5))
    after = torch.rand(1)
    b = build_model(_cfg(init_seed=5))
    c = build_model(_cfg(init_seed=6))
    assert torch.equal(before, after)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def _mae_like_state(embed: int = 32, depth: int = 2, heads: int = 2) -> dict:
    """A timm/MAE-format encoder state dict at 224 px: class token, 1 + 14 * 14 positions, final norm."""
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(7)
    vit = VisionTransformer(img_size=224, patch_size=16, embed_dim=embed, depth=depth, num_heads=heads,
                            mlp_ratio=2.0, num_classes=0)
    return vit.state_dict()


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_init_from_a_local_mae_file_interpolates_the_position_table(tmp_path, fmt):
    import torch.nn.functional as F

    sd = _mae_like_state()
    assert sd["pos_embed"].shape == (1, 197, 32) and "cls_token" in sd and "norm.weight" in sd
    if fmt == "pth":
        path = tmp_path / "mae_pretrain.pth"
        torch.save({"model": sd}, path)  # MAE's release layout: the encoder under 'model'
    else:
        from safetensors.torch import save_file

        path = tmp_path / "mae.safetensors"
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = build_model(_cfg(init=str(path), img_size=96))
    assert model.backbone.pos_embed.shape == (1, 36, 32)
    grid = sd["pos_embed"][:, 1:].reshape(1, 14, 14, 32).permute(0, 3, 1, 2)
    want = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 36, 32)
    assert torch.allclose(model.backbone.pos_embed, want, atol=1e-6)
    for k in ("patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.1.mlp.fc2.bias"):
        assert torch.equal(model.backbone.state_dict()[k], sd[k])


def test_init_errors(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save(_mae_like_state(embed=64, heads=4), path)
    with pytest.raises(WeightsError, match="wrong shape"):
        build_model(_cfg(init=str(path)))
    with pytest.raises(WeightsError, match="does not exist"):
        build_model(_cfg(init=str(tmp_path / "missing.pth")))
    with pytest.raises(WeightsError, match="no MAE weights"):
        build_model(_cfg(init="mae"))
    with pytest.raises(ConfigError, match="model.window"):
        build_model(_cfg(window=20))


def test_every_parameter_gets_a_gradient():
    # distributed training (DDP) refuses parameters that no output depends on
    from mis_pipeline.losses import mis_loss

    model = build_model(_cfg(window=32)).train()
    image, prev, points, labels, valid = _inputs(2, 64, 64)
    logits = model(image, prev, points, labels, valid)
    mis_loss(logits, torch.rand(2, 1, 64, 64) > 0.5, image)[0].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


def test_mae_names_are_timm_pretrained_tags():
    import timm

    tags = set(timm.list_pretrained("*mae*"))
    for arch in ARCHS.values():
        if arch.mae is not None:
            assert arch.mae in tags


@pytest.mark.slow
def test_paper_backbone_accepts_timm_mae_weights(tmp_path):
    # timm's vit_base_patch16_224.mae architecture (random weights: no download) saved as a file,
    # loaded into the paper model at 448 px: every ViT-B tensor found, table resampled 14 -> 28
    import timm
    from safetensors.torch import save_file

    ref = timm.create_model("vit_base_patch16_224.mae", pretrained=False, num_classes=0)
    path = tmp_path / "mae.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
    model = build_model(from_dict(ModelConfig, {"arch": "vit_base", "init": str(path)}))
    assert model.backbone.pos_embed.shape == (1, 28 * 28, 768)
    assert torch.equal(model.backbone.state_dict()["blocks.11.mlp.fc2.weight"], ref.state_dict()["blocks.11.mlp.fc2.weight"])


def test_a_few_adam_steps_fit_one_sample():
    # model + MIS loss + optimiser can learn: the loss on one fixed sample drops clearly
    from mis_pipeline.losses import mis_loss

    torch.manual_seed(0)
    model = build_model(_cfg(head_dropout=0.0)).train()
    image, prev, points, labels, valid = _inputs(2, 64, 64)
    target = torch.zeros(2, 1, 64, 64, dtype=torch.bool)
    target[:, :, 16:48, 20:44] = True
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = mis_loss(model(image, prev, points, labels, valid), target, image)[0]
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
