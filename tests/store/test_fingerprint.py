"""The store's tree settings (every tree-affecting field) and the resolved-config file."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
import pytest
from PIL import Image

from mis_pipeline.config import PipelineConfig, from_dict, to_dict
from mis_pipeline.errors import StoreError, StoreLockedError
from mis_pipeline.store import (
    NOT_TREE_AFFECTING,
    TREE_SECTIONS,
    TreeRecord,
    TreeStore,
    TreeWriter,
    resolved_config_path,
    tree_fingerprint,
    tree_settings,
)

SMALL_STORE = {"records_per_chunk": 4, "records_per_shard": 8, "merges_per_chunk": 256, "merges_per_shard": 512}


def _cfg(**sections: dict[str, Any]) -> PipelineConfig:
    data: dict[str, Any] = {"store": dict(SMALL_STORE), "features": {"backbone": "colour_texture"}}
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return from_dict(PipelineConfig, data)


def _other_value(f: dataclasses.Field[Any], hint: Any, value: Any) -> Any:
    """A valid value of field ``f`` other than ``value`` (fails for a type it cannot alter, so
    a new kind of field makes this test be taught about it rather than pass silently)."""
    meta = f.metadata
    if meta.get("choices"):
        return next(c for c in meta["choices"] if c != value)
    origin = get_origin(hint)
    if origin is Literal:
        return next(a for a in get_args(hint) if a != value)
    if origin is Union or origin is getattr(__import__("types"), "UnionType", None):
        inner = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            hint = inner[0]
            lo = meta.get("ge") if meta.get("ge") is not None else (meta.get("gt") or 0) + 1
            return max(int(lo), 16) if hint is int else float(lo) + 1.0
        return None
    if hint is bool:
        return not value
    if hint is int:
        le = meta.get("le")
        return value + 1 if le is None or value + 1 <= le else value - 1
    if hint is float:
        return value / 2 if value else 0.5
    if hint is str:
        return f"{value}-other"
    raise AssertionError(f"the test does not know how to alter field {f.name!r} of type {hint!r}")


def _walk() -> list[tuple[str, str, Any]]:
    """(section, field, other value) for every field of the tree sections present."""
    base = PipelineConfig()
    out = []
    for section in TREE_SECTIONS:
        if not hasattr(base, section):
            continue
        sec = getattr(base, section)
        hints = typing.get_type_hints(type(sec))
        for f in dataclasses.fields(sec):
            out.append((section, f.name, _other_value(f, hints[f.name], getattr(sec, f.name))))
    return out


FIELDS = _walk()


def test_the_walk_covers_every_field_of_the_tree_sections():
    names = {f"{s}.{n}" for s, n, _ in FIELDS}
    assert {"io.max_side", "features.patch_size", "features.pos_embed", "store.cost_mantissa_bits"} <= names
    assert set(NOT_TREE_AFFECTING) <= names  # no stale exemption
    assert len(names) >= 16  # 2 io + 8 features + 6 store fields today


@pytest.mark.parametrize(("section", "name", "value"), FIELDS, ids=[f"{s}.{n}" for s, n, _ in FIELDS])
def test_every_field_changes_the_fingerprint_or_says_why_not(section, name, value):
    base = PipelineConfig()
    changed = from_dict(PipelineConfig, {section: {name: value}})
    key = f"{section}.{name}"
    if key in NOT_TREE_AFFECTING:
        reason = NOT_TREE_AFFECTING[key]
        assert isinstance(reason, str) and len(reason.split()) >= 8, f"{key}: give the reason"
        assert tree_fingerprint(changed) == tree_fingerprint(base)
        assert key not in tree_settings(changed)
    else:
        assert tree_fingerprint(changed) != tree_fingerprint(base), key
        assert tree_settings(changed)[key] == to_dict(changed)[section][name]


def test_the_merge_has_no_settings_outside_the_config():
    # TREE_SECTIONS names "merge"; while PipelineConfig has no merge section the merge must take
    # no setting at all, or that setting would escape the fingerprint.
    from mis_pipeline.merge import ward_grid

    if not hasattr(PipelineConfig(), "merge"):
        assert list(inspect.signature(ward_grid).parameters) == ["features"]
    assert "merge" in TREE_SECTIONS


def test_settings_of_a_stored_dict_default_missing_fields():
    cfg = PipelineConfig()
    old = to_dict(cfg)
    del old["features"]["pos_embed"]  # a store written before the field existed
    old.pop("evaluate")
    assert tree_settings(old) == tree_settings(cfg)


# --------------------------------------------------------------------------- the writer
def _tree_record(image_id: str, grid=(3, 4)) -> TreeRecord:
    from mis_pipeline.merge import ward_grid

    feats = np.random.default_rng(len(image_id)).normal(size=(*grid, 5)).astype(np.float32)
    tree = ward_grid(feats)
    return TreeRecord(image_id=image_id, source=f"/x/{image_id}", status="ok", backbone="colour_texture",
                      orig_hw=(grid[0] * 8, grid[1] * 8), resized_hw=(grid[0] * 8, grid[1] * 8),
                      grid_hw=grid, tree=tree)


def test_resume_with_another_patch_size_is_refused(tmp_path):
    # The case: a patch-8 store resumed with --set features.patch_size=16.
    path = tmp_path / "s.zarr"
    with TreeWriter(path, _cfg()) as w:
        w.commit([_tree_record("a.png")])
    with pytest.raises(StoreError, match=r"features\.patch_size: store has None, this run 16"):
        TreeWriter(path, _cfg(features={"patch_size": 16}))
    with pytest.raises(StoreError, match=r"features\.init_seed"):
        TreeWriter(path, _cfg(features={"init_seed": 3}))
    with pytest.raises(StoreError, match=r"features\.amp"):
        TreeWriter(path, _cfg(features={"amp": False}))
    # not tree-affecting: accepted
    with TreeWriter(path, _cfg(features={"batch_size": 3, "device": "cpu"}), retry_failed=True) as w:
        assert w.is_done("a.png")
    assert TreeStore.open(path).attrs["tree_fingerprint"] == tree_fingerprint(_cfg())


def test_resolved_config_only_after_acceptance_and_atomic(tmp_path):
    path = tmp_path / "s.zarr"
    yaml_path = resolved_config_path(path)
    assert yaml_path == tmp_path / "s.zarr.resolved_config.yaml"
    # a run that fails before its first commit records nothing
    with pytest.raises(RuntimeError):
        with TreeWriter(path, _cfg()):
            assert not yaml_path.exists()
            raise RuntimeError("backbone failed")
    assert not yaml_path.exists()
    # the first commit records it
    with TreeWriter(path, _cfg(preprocess={"batch_size": 5})) as w:
        w.commit([_tree_record("a.png")])
        assert "batch_size: 5" in yaml_path.read_text()
    first = yaml_path.read_bytes()
    assert b"source of truth" in first and b"cost_mantissa_bits: 10" in first
    # refused: other tree settings, locked, or failing before a commit -> the file is untouched
    with pytest.raises(StoreError):
        TreeWriter(path, _cfg(features={"patch_size": 16}, preprocess={"batch_size": 7}))
    with TreeWriter(path, _cfg()) as w:
        with pytest.raises(StoreLockedError):
            TreeWriter(path, _cfg(preprocess={"batch_size": 9}))
        assert yaml_path.read_bytes() == first
        w.commit([_tree_record("b.png")])  # this (accepted) run rewrites it
    second = yaml_path.read_bytes()
    assert b"batch_size: 32" in second
    with pytest.raises(KeyboardInterrupt):
        with TreeWriter(path, _cfg(preprocess={"batch_size": 11})):
            raise KeyboardInterrupt
    assert yaml_path.read_bytes() == second
    # an accepted run with nothing to commit records its configuration when it closes
    with TreeWriter(path, _cfg(preprocess={"batch_size": 12})):
        pass
    assert b"batch_size: 12" in yaml_path.read_bytes()
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*.partial"))


def test_a_refused_new_store_leaves_no_file(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "x.txt").write_text("not a store")
    with pytest.raises(StoreError, match="not a tree store"):
        TreeWriter(plain, _cfg())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]


def test_preprocess_refuses_a_patch_change_and_keeps_the_yaml(tmp_path):
    from mis_pipeline.pipeline import preprocess

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    out = tmp_path / "s.zarr"
    cfg = _cfg(preprocess={"executor": "local"})
    res = preprocess(imgs, out, cfg)
    assert res.n_ok == 3 and TreeStore.open(out)[0].grid_hw == (5, 7)
    before = resolved_config_path(out).read_bytes()
    with pytest.raises(StoreError, match=r"features\.patch_size"):
        preprocess(imgs, out, _cfg(preprocess={"executor": "local"}, features={"patch_size": 16}))
    assert resolved_config_path(out).read_bytes() == before
    assert {r.grid_hw for r in TreeStore.open(out)} == {(5, 7)}


def test_cli_refused_runs_leave_the_yaml_alone(tmp_path, capsys):
    from mis_pipeline.cli import main

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    out = tmp_path / "s.zarr"
    base = ["preprocess", str(imgs), "--out", str(out), "--executor", "local", "--no-progress",
            "--set", "features.backbone=colour_texture"]
    assert main(base) == 0
    yaml_path = resolved_config_path(out)
    before = yaml_path.read_bytes()
    assert main([*base, "--set", "features.patch_size=16"]) == 2
    assert "features.patch_size" in capsys.readouterr().err
    assert yaml_path.read_bytes() == before
    # a new store refused before it starts (the folder holds something else): no new file
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    assert main(["preprocess", str(imgs), "--out", str(junk), "--executor", "local", "--no-progress",
                 "--set", "features.backbone=colour_texture"]) == 2
    assert not resolved_config_path(junk).exists()
