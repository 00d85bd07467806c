"""Issue 13 item 3: without network the default backbone fails at once (one hub check, no
retries) with an error naming both ways out, and a resume is checked before any download.

The hub is monkeypatched: no test here touches the network."""

from __future__ import annotations

import time

import huggingface_hub
import pytest

from mis_pipeline.cli import main
from mis_pipeline.errors import WeightsError
from mis_pipeline.features import get_backbone


class _DeadHub:
    """A hub session whose every request fails like a machine without network."""

    def __init__(self) -> None:
        self.calls = 0

    def head(self, url, **kwargs):  # noqa: ANN001, ANN003
        import httpx

        self.calls += 1
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    get = head


@pytest.fixture
def dead_hub(monkeypatch):
    hub = _DeadHub()
    monkeypatch.setattr(huggingface_hub, "get_session", lambda: hub)
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def no_download(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("hf_hub_download must not be called when the hub is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    return hub


def _assert_names_ways_out(message: str) -> None:
    assert "--config offline" in message
    assert "--set features.weights=FILE" in message
    assert "huggingface.co" in message and "cannot be reached" in message


def test_backbone_fails_fast_with_one_attempt(dead_hub):
    t0 = time.perf_counter()
    with pytest.raises(WeightsError) as err:
        get_backbone("dino_vits8", device="cpu")
    assert time.perf_counter() - t0 < 10  # timm alone retries for about a minute
    assert dead_hub.calls == 1
    _assert_names_ways_out(str(err.value))


def test_offline_env_fails_without_any_request(dead_hub, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsError, match="HF_HUB_OFFLINE") as err:
        get_backbone("dino_vits8", device="cpu")
    assert dead_hub.calls == 0
    assert "--config offline" in str(err.value)


def test_cached_weights_need_no_network(dead_hub, monkeypatch, tmp_path):
    """A cached file is handed to timm as a local file: no request at all."""
    import timm
    from timm.models.vision_transformer import VisionTransformer

    from mis_pipeline.features.vit import TEST_VIT_TINY_ARCH

    cached = tmp_path / "model.safetensors"
    cached.write_bytes(b"stand-in")
    monkeypatch.setattr(
        huggingface_hub, "try_to_load_from_cache",
        lambda repo, name, **k: str(cached) if name == "model.safetensors" else None,
    )
    seen = {}

    def fake_create_model(name, **kwargs):  # noqa: ANN001, ANN003
        seen.update(kwargs, name=name)
        return VisionTransformer(num_classes=0, dynamic_img_size=True, **TEST_VIT_TINY_ARCH)

    monkeypatch.setattr(timm, "create_model", fake_create_model)
    get_backbone("dino_vits8", device="cpu")
    assert dead_hub.calls == 0
    assert seen["name"] == "vit_small_patch8_224.dino" and seen["pretrained"] is True
    assert seen["pretrained_cfg_overlay"] == {"file": str(cached)}


def test_cli_preprocess_without_network_is_one_line_exit_2(dead_hub, small_corpus, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    rc = main(["preprocess", str(small_corpus), "--out", str(store), "--executor", "local",
               "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 2 and dead_hub.calls == 1
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, cap.err
    _assert_names_ways_out(errors[0])
    assert "Traceback" not in cap.out + cap.err
    assert cap.err.count("cannot be reached") == 1  # not printed twice
    assert not store.exists()  # a run that cannot start leaves no store


def test_resume_settings_checked_before_any_download(dead_hub, small_corpus, tmp_path, capsys):
    store = tmp_path / "s.zarr"
    assert main(["preprocess", str(small_corpus), "--out", str(store), "--config", "offline",
                 "--executor", "local", "--no-progress"]) == 0
    capsys.readouterr()
    # resume with the default (DINO, hub weights): refused by the store, the hub never asked
    rc = main(["preprocess", str(small_corpus), "--out", str(store), "--executor", "local",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and dead_hub.calls == 0
    assert "store" in err and "backbone" in err and "Traceback" not in err
