"""list_images on a directory, a list file, an fsspec memory:// URL; read_bytes through fsspec."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mis_pipeline.errors import InputSourceError, UnreadableImageError
from mis_pipeline.io import ImageRef, list_images, load_image, read_bytes


def _png_bytes(value: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    for rel in ["b.jpg", "a.PNG", "sub/z.webp", "sub/deeper/c.tif", "sub/notes.txt", "x.json"]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(_png_bytes(len(rel)))
    return root


def test_directory_recursive_sorted_relative_ids(tree: Path) -> None:
    refs = list_images(tree)
    assert [r.image_id for r in refs] == ["a.PNG", "b.jpg", "sub/deeper/c.tif", "sub/z.webp"]
    for r in refs:
        assert Path(r.path).is_absolute() and Path(r.path) == tree / r.image_id
    assert list_images(str(tree)) == refs  # str and Path agree; order is deterministic


def test_directory_extension_filter_case_insensitive(tree: Path) -> None:
    assert [r.image_id for r in list_images(tree, ["PNG"])] == ["a.PNG"]
    assert [r.image_id for r in list_images(tree, (".TIF", "webp"))] == [
        "sub/deeper/c.tif",
        "sub/z.webp",
    ]


def test_list_file(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "o.png"
    outside.parent.mkdir()
    outside.write_bytes(_png_bytes(3))
    listing = tree / "list.txt"
    listing.write_text(
        "# comment line\n"
        "sub/z.webp\n"
        "\n"
        "  b.jpg  \n"
        f"{tree / 'sub' / 'deeper' / 'c.tif'}\n"
        f"{outside}\n"
        "b.jpg\n"  # repeated: listed once
        "missing.png\n"  # listed; reading it fails later, per image
    )
    refs = list_images(listing)
    ids = [r.image_id for r in refs]
    assert ids == [
        "sub/z.webp",
        "b.jpg",
        "sub/deeper/c.tif",
        str(outside).lstrip("/"),
        "missing.png",
    ]
    assert refs[0].path == str(tree / "sub" / "z.webp")
    assert refs[3].path == str(outside)
    assert read_bytes(refs[1]) == (tree / "b.jpg").read_bytes()
    with pytest.raises(UnreadableImageError):
        read_bytes(refs[-1])


def test_list_file_id_collision(tmp_path: Path) -> None:
    listing = tmp_path / "l.txt"
    listing.write_text("a/x.png\n/elsewhere/a/x.png\n")
    # "/elsewhere/a/x.png" gets id "elsewhere/a/x.png": no collision ...
    assert [r.image_id for r in list_images(listing)] == ["a/x.png", "elsewhere/a/x.png"]
    listing.write_text(f"a/x.png\n{tmp_path}/a/./x.png\n")
    # ... the same file twice is listed once
    assert len(list_images(listing)) == 1
    # Two different files with one id is an error naming both.
    listing.write_text("x.png\n/x.png\n")
    with pytest.raises(InputSourceError, match="already names"):
        list_images(listing)


def test_single_image_file(tree: Path) -> None:
    assert list_images(tree / "b.jpg") == [ImageRef("b.jpg", str(tree / "b.jpg"))]


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(InputSourceError, match="does not exist"):
        list_images(tmp_path / "nope")
    with pytest.raises(InputSourceError):
        list_images("memory://does-not-exist-" + uuid.uuid4().hex)


@pytest.fixture
def memfs_root() -> Iterator[str]:
    import fsspec

    fs = fsspec.filesystem("memory")
    root = "/mis-test-" + uuid.uuid4().hex
    for rel, value in [("b.png", 1), ("a/x.jpg", 2), ("a/y.PNG", 3), ("skip.txt", 4)]:
        fs.pipe(f"{root}/{rel}", _png_bytes(value))
    fs.pipe(f"{root}/list.txt", b"a/y.PNG\nb.png\n" + f"{root}/a/x.jpg\n".encode())
    yield root
    fs.rm(root, recursive=True)


def test_memory_url_directory(memfs_root: str) -> None:
    refs = list_images("memory://" + memfs_root)
    assert [r.image_id for r in refs] == ["a/x.jpg", "a/y.PNG", "b.png"]
    assert all(r.path.startswith("memory://") for r in refs)
    img = load_image(refs[1].path)
    assert img.shape == (8, 8, 3) and (img == 3).all()
    assert load_image(read_bytes(refs[2]))[0, 0, 0] == 1


def test_memory_url_list_file(memfs_root: str) -> None:
    refs = list_images(f"memory://{memfs_root}/list.txt")
    assert [r.image_id for r in refs] == ["a/y.PNG", "b.png", "a/x.jpg"]
    assert [int(load_image(r.path)[0, 0, 0]) for r in refs] == [3, 1, 2]


def test_file_url_directory(tree: Path) -> None:
    refs = list_images(tree.as_uri())
    assert [r.image_id for r in refs] == [r.image_id for r in list_images(tree)]
    assert refs[0].path.startswith("file://")
    np.testing.assert_array_equal(load_image(refs[0].path), load_image(tree / refs[0].image_id))


def test_read_bytes_missing_url() -> None:
    with pytest.raises(UnreadableImageError):
        read_bytes("memory://nope-" + uuid.uuid4().hex + "/a.png")


def test_prepare_batch_reports_bad_files_and_goes_on(tree: Path) -> None:
    from mis_pipeline.io import prepare_batch

    (tree / "broken.png").write_bytes(_png_bytes(9)[:40])
    (tree / "empty.jpg").write_bytes(b"")
    (tree / "text.bmp").write_text("not a bitmap")
    refs = list_images(tree)
    prepared, failures = prepare_batch(refs, 4)
    assert [r.image_id for r, _ in prepared] == ["a.PNG", "b.jpg", "sub/deeper/c.tif", "sub/z.webp"]
    assert all(p.grid_shape == (2, 2) for _, p in prepared)
    assert [(f.ref.image_id, f.reason) for f in failures] == [
        ("broken.png", "truncated"),
        ("empty.jpg", "empty"),
        ("text.bmp", "not_an_image"),
    ]
    assert "broken.png" in failures[0].message
    # Too small for the patch is a per-image failure too.
    _, small = prepare_batch(refs[:1], 16)
    assert [f.reason for f in small] == ["too_small"]
