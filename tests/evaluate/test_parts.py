"""RefCut's combination evaluation: parts, connected pairs, whole objects, and references."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mis_pipeline.errors import DatasetError
from mis_pipeline.evaluate.datasets import open_dataset
from mis_pipeline.evaluate.parts import PartCombinationDataset, connected_pairs


def _labels_a() -> np.ndarray:
    """Parts 1 | 2 side by side (touching), part 3 apart from both."""
    lab = np.zeros((12, 16), np.uint8)
    lab[2:6, 2:6] = 1
    lab[2:6, 6:10] = 2
    lab[8:11, 12:15] = 3
    return lab


def _labels_b() -> np.ndarray:
    """Parts 1 and 3 touching diagonally (8-neighbours), part 2 absent."""
    lab = np.zeros((12, 16), np.uint8)
    lab[1:4, 1:4] = 1
    lab[4:7, 4:7] = 3
    return lab


def _make(root: Path, maps: dict[str, np.ndarray]) -> None:
    (root / "images").mkdir(parents=True)
    (root / "part_labels").mkdir()
    rows = []
    (root / "masks").mkdir()
    for name, lab in maps.items():
        Image.fromarray(np.full(lab.shape + (3,), 100, np.uint8)).save(root / "images" / f"{name}.jpg")
        Image.fromarray(lab).save(root / "part_labels" / f"{name}.png")
        for v in np.unique(lab[lab > 0]):
            mpath = f"masks/{name}__{v}.png"
            Image.fromarray(((lab == v) * 255).astype(np.uint8)).save(root / mpath)
            rows.append({"image": f"images/{name}.jpg", "mask": mpath, "part": f"p{v}"})
    with (root / "pairs.csv").open("w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=["image", "mask", "part"])
        wr.writeheader()
        wr.writerows(rows)


def test_connected_pairs_touching_and_tolerance():
    a = np.zeros((6, 9), bool)
    a[1:3, 1:3] = True
    b = np.zeros_like(a)
    b[3:5, 3:5] = True  # diagonal neighbour of a
    c = np.zeros_like(a)
    c[0:2, 4:6] = True  # one empty column from a, one empty row from b
    assert connected_pairs({"a": a, "b": b, "c": c}, 1) == [("a", "b")]
    assert connected_pairs({"a": a, "b": b, "c": c}, 2) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert connected_pairs({"a": a, "b": a.copy()}, 0) == [("a", "b")]  # overlap connects


@pytest.mark.parametrize("source", ["labels", "masks"])
def test_combinations_and_references_on_synthetic_parts(tmp_path, source):
    # Three images; "x" sorts last. img a: parts 1,2,3 (1-2 touch); b: parts 1,3 (touching);
    # x: parts 1,2 (touching).
    lab_x = np.zeros((12, 16), np.uint8)
    lab_x[3:7, 3:7] = 1
    lab_x[7:9, 3:7] = 2
    _make(tmp_path, {"a": _labels_a(), "b": _labels_b(), "x": lab_x})
    names = {1: "p1", 2: "p2", 3: "p3"} if source == "labels" else None
    ds = open_dataset("parts", tmp_path, source=source, part_names=names) if names else open_dataset(
        "parts", tmp_path, source=source)
    assert ds.ids == [
        "a:p1", "a:p2", "a:p3", "a:p1+p2", "a:whole",
        "b:p1", "b:p3", "b:p1+p3", "b:whole",
        "x:p1", "x:p2", "x:p1+p2", "x:whole",
    ]
    ref = {ds.ids[i]: (None if ds.reference_index(i) is None else ds.ids[ds.reference_index(i)]) for i in range(len(ds))}
    assert ref["a:p1"] == "b:p1" and ref["b:p1"] == "x:p1" and ref["x:p1"] == "a:p1"  # wraps around
    assert ref["a:p2"] == "x:p2" and ref["x:p2"] == "a:p2"  # b has no part 2: skipped
    assert ref["a:p3"] == "b:p3" and ref["b:p3"] == "a:p3"
    assert ref["a:p1+p2"] == "x:p1+p2" and ref["x:p1+p2"] == "a:p1+p2"
    assert ref["b:p1+p3"] is None  # no other image has that connected pair
    assert ref["a:whole"] == "b:whole" and ref["x:whole"] == "a:whole"

    s = ds.load(ds.ids.index("a:p1+p2"))
    assert s.kind == "pair" and s.parts == ("p1", "p2") and s.gt.sum() == 32 and s.reference_id == "x:p1+p2"
    assert ds.load(ds.ids.index("a:whole")).gt.sum() == 16 + 16 + 9
    r = ds.load_reference(ds.ids.index("a:p1"))
    assert r.sample_id == "b:p1" and r.positive.sum() == 9 and r.negative.sum() == 9  # b's part 3
    assert not np.any(r.positive & r.negative)
    w = ds.load_reference(ds.ids.index("x:whole"))
    assert w.sample_id == "a:whole" and w.negative.sum() == 0
    assert ds.load_reference(ds.ids.index("b:p1+p3")) is None


def test_parts_errors(tmp_path):
    with pytest.raises(DatasetError, match="missing"):
        PartCombinationDataset(tmp_path)
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="label maps"):
        PartCombinationDataset(tmp_path)
    with pytest.raises(DatasetError, match="source"):
        PartCombinationDataset(tmp_path, source="nope")  # type: ignore[arg-type]


@pytest.mark.data
@pytest.mark.slow
def test_real_carparts(shared_data):
    root = shared_data / "CarParts"
    ds = open_dataset("parts", root)
    assert ds.source == "masks"
    kinds = [e.kind for e in ds.entries]
    n_images = len({e.image_name for e in ds.entries})
    assert n_images == 100 and kinds.count("whole") == 100
    # Instances of one part name are united: 811 instances, 779 (image, part) pairs.
    assert kinds.count("part") == 779
    assert kinds.count("pair") > 500
    entries = ds.entries
    for i in range(0, len(ds), 97):
        e = entries[i]
        j = ds.reference_index(i)
        if j is None:
            continue
        r = entries[j]
        assert (r.kind, r.key) == (e.kind, e.key) and r.image_name != e.image_name
        # the next image name in lexicographic order among those with that sample, or the first
        later = sorted(x.image_name for x in entries if (x.kind, x.key) == (e.kind, e.key) and x.image_name > e.image_name)
        first = min(x.image_name for x in entries if (x.kind, x.key) == (e.kind, e.key))
        assert r.image_name == (later[0] if later else first)
    i = ds.ids.index("car10:back_bumper+tailgate")
    s = ds.load(i)
    assert s.image.shape[:2] == s.gt.shape and s.kind == "pair" and s.gt.sum() > 0
    # Label maps give (almost) the same samples: parts hidden under others in the label map
    # (e.g. a mirror drawn over by a door) are missing there.
    names = {}
    with (root / "pairs.csv").open() as fh:
        for row in csv.DictReader(fh):
            names[int(row["category_id"]) - 1] = row["part"]
    dl = open_dataset("parts", root, source="labels", part_names=names)
    assert set(dl.ids) <= set(ds.ids) and len(dl) > 0.9 * len(ds)
