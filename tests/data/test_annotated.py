"""AnnotatedDataset: the sample contract from annotated masks (folder, COCO JSON), seeded subsets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mis_pipeline.config import DataConfig, from_dict
from mis_pipeline.data import AnnotatedDataset, CocoDataset
from mis_pipeline.data.annotated import rasterize_polygons
from mis_pipeline.errors import DatasetError, SampleError

CFG = from_dict(DataConfig, {"epoch_size": 30, "augment": {"crop_size": 64}})


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1


@pytest.fixture(scope="module")
def annotated_folder(tmp_path_factory) -> Path:
    """6 images with two objects each: ``pairs.csv`` (12 masks) and a COCO JSON of the same."""
    from mis_pipeline.annotate.rle import coco_rle

    root = tmp_path_factory.mktemp("annotated")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    lines = ["image,mask"]
    coco = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "object"}]}
    for i in range(6):
        h, w = 60 + 4 * i, 80
        img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        objs = [_ellipse(h, w, 20, 22, 12, 15), _ellipse(h, w, h - 22, 56, 14, 16)]
        for k, m in enumerate(objs):
            img[m] = (200, 40 + 100 * k, 90)
            Image.fromarray(m.astype(np.uint8) * 255).save(root / "masks" / f"im{i}_{k}.png")
            lines.append(f"images/im{i}.png,masks/im{i}_{k}.png")
            if k == 0:  # compressed RLE
                seg: object = coco_rle(m)
            else:  # a polygon: the box around the second ellipse
                ys, xs = np.nonzero(m)
                seg = [[float(xs.min()), float(ys.min()), float(xs.max()), float(ys.min()),
                        float(xs.max()), float(ys.max()), float(xs.min()), float(ys.max())]]
            coco["annotations"].append({"id": 100 + 2 * i + k, "image_id": i, "category_id": 1,
                                        "segmentation": seg, "iscrowd": 0})
        coco["annotations"].append({"id": 900 + i, "image_id": i, "category_id": 1, "iscrowd": 1,
                                    "segmentation": coco_rle(objs[0])})  # crowd: skipped
        Image.fromarray(img).save(root / "images" / f"im{i}.png")
        coco["images"].append({"id": i, "file_name": f"im{i}.png", "height": h, "width": w})
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    (root / "coco.json").write_text(json.dumps(coco))
    return root


def test_folder_samples_follow_the_contract(annotated_folder):
    ds = AnnotatedDataset.open("folder", annotated_folder, config=CFG, seed=1)
    assert len(ds) == 30 and ds.subset.size == 12
    for index in (0, 11, 29):
        s = ds.sample(index, 2)
        assert s["image"].shape == (64, 64, 3) and s["mask"].dtype == bool
        assert s["points"].shape == (48, 2) and s["labels"].dtype == np.int8
        pts = s["points"][s["valid"] & (s["labels"] == 1)]
        assert s["mask"][pts[:, 0], pts[:, 1]].all()
        j = ds.object_of(index, 2)
        assert int(s["image_index"]) == j and int(s["node"]) == j  # folder: no annotation ids
        again = AnnotatedDataset.open("folder", annotated_folder, config=CFG, seed=1).sample(index, 2)
        assert all(np.array_equal(s[k], again[k]) for k in s)
        # the mask is the annotated object: its red colour (200, +-25 % brightness) in the crop
        colour = s["image"][s["mask"]].astype(int).mean(axis=0)
        assert colour[0] > 120


def test_coco_json_polygons_rle_and_crowd(annotated_folder):
    coco = CocoDataset(annotated_folder / "images", annotated_folder / "coco.json")
    assert len(coco) == 12  # crowd annotations left out
    assert coco.ids[:2] == ["im0#100", "im0#101"]
    folder = AnnotatedDataset.open("folder", annotated_folder, config=CFG).source
    for j in range(12):
        a, b = coco.load(j), folder.load(j)
        assert np.array_equal(a.image, b.image)
        if j % 2 == 0:  # RLE: exact
            assert np.array_equal(a.gt, b.gt)
        else:  # polygon of the bounding box: contains the object
            assert (a.gt | ~b.gt).all() and a.gt.sum() < 1.5 * b.gt.sum()
    ds = AnnotatedDataset(coco, config=CFG, seed=0)
    s = ds.sample(3)
    assert int(s["node"]) == coco.annotation_id(int(s["image_index"]))
    with pytest.raises(DatasetError, match="missing"):
        CocoDataset(annotated_folder / "images", annotated_folder / "nope.json")


def test_rasterize_polygons_square():
    m = rasterize_polygons([[2, 3, 6, 3, 6, 8, 2, 8]], (12, 10))
    rows, cols = np.nonzero(m)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (3, 8, 2, 6)
    assert m.sum() == 6 * 5


def test_data_ratio_is_a_seeded_subset(annotated_folder):
    a = AnnotatedDataset.open("folder", annotated_folder, config=CFG, seed=3, data_ratio=0.25)
    b = AnnotatedDataset.open("folder", annotated_folder, config=CFG, seed=3, data_ratio=0.25)
    c = AnnotatedDataset.open("folder", annotated_folder, config=CFG, seed=4, data_ratio=0.25)
    assert a.subset.size == 3 and np.array_equal(a.subset, b.subset)
    assert not np.array_equal(a.subset, c.subset)
    assert {a.object_of(i) for i in range(30)} == set(a.subset.tolist())
    tiny = AnnotatedDataset.open("folder", annotated_folder, config=CFG, data_ratio=0.01)
    assert tiny.subset.size == 1


def test_vanishing_object_is_reported(annotated_folder):
    cfg = from_dict(DataConfig, {"epoch_size": 4, "max_redraws": 1, "augment": {"crop_size": 64},
                                 "clicks": {"min_object_area": 64 * 64 + 1}})
    ds = AnnotatedDataset.open("folder", annotated_folder, config=cfg)
    with pytest.raises(SampleError, match="all 2 draws"):
        ds.sample(0)


def test_bad_arguments(annotated_folder):
    with pytest.raises(DatasetError, match="takes no split"):
        AnnotatedDataset.open("folder", annotated_folder, split="val")
    with pytest.raises(TypeError, match="Dataset"):
        AnnotatedDataset([1, 2, 3])  # type: ignore[arg-type]
    with pytest.raises(Exception, match="data_ratio"):
        AnnotatedDataset.open("folder", annotated_folder, data_ratio=1.5)


@pytest.mark.data
def test_carparts_coco_polygons_match_the_rasterised_masks(shared_data):
    """CarParts ships its COCO polygons and the masks rasterised from them: they agree."""
    root = shared_data / "CarParts"
    coco = CocoDataset(root / "images", root / "annotations_coco_polygons.json")
    assert len(coco) == 811
    masks = {p.name.split("__")[1].split("_")[0]: p for p in (root / "masks").glob("*.png")}
    ious = []
    for j in range(0, 811, 40):
        ann = coco.ids[j].split("#")[1]
        s = coco.load(j)
        ref = np.asarray(Image.open(masks[ann])) > 0
        ious.append((s.gt & ref).sum() / (s.gt | ref).sum())
    assert min(ious) > 0.9 and np.mean(ious) > 0.97


def test_sbd_train_split_and_instance_ids(tmp_path):
    from scipy.io import savemat

    seg = np.zeros((48, 56), np.uint8)
    seg[4:30, 5:35] = 2
    seg[30:46, 20:54] = 5  # instance ids need not be contiguous
    rng = np.random.default_rng(1)
    (tmp_path / "img").mkdir()
    (tmp_path / "inst").mkdir()
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (48, 56, 3), dtype=np.uint8)).save(tmp_path / "img" / f"{name}.jpg")
        savemat(tmp_path / "inst" / f"{name}.mat", {"GTinst": {"Segmentation": seg}})
    (tmp_path / "train.txt").write_text("b\n")
    (tmp_path / "val.txt").write_text("a\nb\n")
    ds = AnnotatedDataset.open("sbd", tmp_path, config=CFG, seed=0)  # split defaults to train
    assert ds.source.ids == ["b#2", "b#5"]
    nodes = {int(ds.sample(i)["node"]) for i in range(6)}
    assert nodes == {2, 5}
    assert len(AnnotatedDataset.open("sbd", tmp_path, split="val", config=CFG).source) == 4


@pytest.mark.parametrize("layout", ["coco", "sbd"])
def test_other_negatives_come_from_the_other_objects(tmp_path, annotated_folder, layout):
    from mis_pipeline.data.annotated import _other_objects
    from mis_pipeline.data.augment import Augmenter
    from mis_pipeline.data.seeding import sample_seeds

    cfg = from_dict(DataConfig, {"epoch_size": 12, "augment": {"crop_size": 64},
                                 "clicks": {"negative_probs": [0.0, 1.0, 0.0], "prob_gamma": 0.95}})
    if layout == "coco":
        ds = AnnotatedDataset(CocoDataset(annotated_folder / "images", annotated_folder / "coco.json"), config=cfg)
    else:
        from scipy.io import savemat

        seg = np.zeros((48, 56), np.uint8)
        seg[4:30, 5:35] = 2
        seg[30:46, 20:54] = 5
        (tmp_path / "img").mkdir()
        (tmp_path / "inst").mkdir()
        Image.fromarray(np.full((48, 56, 3), 90, np.uint8)).save(tmp_path / "img" / "a.jpg")
        savemat(tmp_path / "inst" / "a.mat", {"GTinst": {"Segmentation": seg}})
        (tmp_path / "train.txt").write_text("a\n")
        ds = AnnotatedDataset.open("sbd", tmp_path, config=cfg)
    augmenter = Augmenter(cfg.augment)
    seen = 0
    for index in range(12):
        s = ds.sample(index)
        j = int(s["image_index"])
        src = ds.source.load(j)
        other = _other_objects(ds.source, j, src.gt.shape)
        assert other is not None and not (other & src.gt).any()
        rng, aug_seed = sample_seeds(ds.seed, 0, index, 0)
        aug = augmenter(src.image, src.gt, aug_seed, other=other)
        assert np.array_equal(aug.mask, s["mask"])
        neg = s["points"][s["valid"] & (s["labels"] == 0)]
        if aug.other.any():
            assert aug.other[neg[:, 0], neg[:, 1]].all()  # the "other" strategy only
            seen += len(neg)
    assert seen > 0
    # without other objects, "other" falls back to the background
    plain = AnnotatedDataset(ds.source, config=cfg, other_objects=False)
    assert plain.sample(0)["image"].shape == (64, 64, 3)
