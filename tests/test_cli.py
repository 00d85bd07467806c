"""The ``mis`` command line: help texts, errors as one line, config subcommand."""

from __future__ import annotations

import subprocess
import sys

from mis_pipeline.cli import app, main


def test_help_lists_commands(capsys):
    rc = main(["--help"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "config" in out


def test_every_subcommand_has_help(capsys):
    import typer.main

    group = typer.main.get_command(app)
    names = sorted(group.commands)
    assert names, "no subcommands registered"
    for name in names:
        cmd = group.commands[name]
        assert cmd.help and len(cmd.help.strip()) > 20, f"'mis {name}' has no real help text"
        assert main([name, "--help"]) == 0


def test_config_error_is_one_clear_line(capsys):
    rc = main(["config", "--set", "features.batch_size=0"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "features.batch_size" in err and "got 0" in err
    assert "Traceback" not in err


def test_config_docs(capsys):
    assert main(["config", "--docs"]) == 0
    out = capsys.readouterr().out
    assert "features.backbone" in out and "decompression-bomb" in out


def test_version_and_console_script():
    out = subprocess.run(
        [sys.executable, "-m", "mis_pipeline.cli", "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("mis-pipeline ")


def test_import_is_light():
    code = (
        "import sys, time; t=time.perf_counter(); import mis_pipeline, mis_pipeline.config; "
        "import mis_pipeline.merge; "
        "dt=time.perf_counter()-t; heavy=[m for m in ('torch','ray','timm','numba','sklearn') if m in sys.modules]; "
        "print(dt, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    dt, heavy = out.split(" ", 1)
    assert heavy.strip() == "[]", f"import mis_pipeline pulled in {heavy.strip()}"


def test_top_level_names_resolve():
    import mis_pipeline

    for name in mis_pipeline.__all__:
        assert getattr(mis_pipeline, name) is not None, name


def test_docstring_example_runs():
    import numpy as np

    from mis_pipeline import get_backbone, tree_index, ward_grid

    img = np.zeros((40, 48, 3), np.uint8)
    img[:, 24:] = 200
    feats = get_backbone("colour_texture").features_for_image(img)
    tree = ward_grid(feats)
    mask = tree_index(tree).image_mask(tree.children[-1, 0], img.shape[:2])
    assert mask.shape == (40, 48) and mask.dtype == bool
