"""Mined RefCut pairs (new): node mean features by prefix sums, matching, and the dataset."""

from __future__ import annotations

import numpy as np
import pytest

from mis_pipeline.refcut.mined import MinedPairDataset, match_node, node_mean_features


def test_node_means_equal_a_direct_average(random_tree):
    rng = np.random.default_rng(0)
    tree = random_tree(5, 7, rng)
    feats = rng.normal(size=(5, 7, 4)).astype(np.float32)
    means = node_mean_features(tree, feats)
    n = 35
    assert means.shape == (2 * n - 1, 4)
    # reference: leaves of each node by walking the children table
    members = {i: [i] for i in range(n)}
    for k, (a, b) in enumerate(tree.children):
        members[n + k] = members[int(a)] + members[int(b)]
    flat = feats.reshape(n, 4)
    for v, leaves in members.items():
        np.testing.assert_allclose(means[v], flat[leaves].mean(0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="grid"):
        node_mean_features(tree, feats[:4])


def test_match_node_is_the_cosine_argmax():
    feats = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
    assert match_node(np.array([2.0, 0.1]), feats, np.arange(4))[0] == 0
    assert match_node(np.array([2.0, 0.1]), feats, np.array([1, 2, 3]))[0] == 2
    node, sim = match_node(np.array([0.0, 3.0]), feats, np.arange(4))
    assert node == 1 and sim == pytest.approx(1.0)


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory):
    from refcut_helpers import build_store, write_parts

    a = build_store(write_parts(tmp_path_factory.mktemp("sa"), 4, seed=1) / "images",
                    tmp_path_factory.mktemp("a") / "t.zarr")
    b = build_store(write_parts(tmp_path_factory.mktemp("sb"), 4, seed=2) / "images",
                    tmp_path_factory.mktemp("b") / "t.zarr")
    return a, b


@pytest.mark.slow
def test_mined_samples(two_stores):
    from mis_pipeline.config import DataConfig, from_dict
    from mis_pipeline.proposals import node_mask

    a, b = two_stores
    cfg = from_dict(DataConfig, {"epoch_size": 8, "augment": {"crop_size": 64}})
    ds = MinedPairDataset(a, b, seed=0, config=cfg)
    assert ds.features.backbone == "colour_texture"
    seen_modes = set()
    for i in range(8):
        s = ds.sample(i)
        assert s["ref_image"].shape == (64, 64, 3) and s["ref_pos"].shape == (64, 64)
        assert not (s["ref_pos"] & s["ref_neg"]).any()
        r, node = int(s["ref_index"]), int(s["ref_node"])
        tree = ds.refs.tree(r)
        # the positive mask is the matched node, which is the most similar candidate
        feats_b = ds.node_features(ds.refs, r)
        q = ds.node_features(ds.targets, int(s["image_index"]))[int(s["node"])]
        assert match_node(q, feats_b, ds._candidates(tree))[0] == node
        full = node_mask(tree, node, ds.refs.load_image(r).shape[:2])
        assert full.any()
        seen_modes.add((bool(s["ref_pos"].any()), bool(s["ref_neg"].any())))
    assert (True, True) in seen_modes
    a1, a2 = ds.sample(3, 1), ds.sample(3, 1)
    assert all(np.array_equal(a1[k], a2[k]) for k in a1)
    # one store: the reference is never the target image
    same = MinedPairDataset(a, a, seed=0, config=cfg)
    for i in range(4):
        s = same.sample(i)
        assert int(s["ref_index"]) != int(s["image_index"])
