"""``mis demo``: the offline end-to-end demo (bundled photos -> tree store -> hierarchy PNG)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import (
    CONFIG_HELP,
    CONFIG_METAVAR,
    SET_HELP,
    SET_METAVAR,
    Progress,
    load_config,
    setup_logging,
    write_resolved_config,
)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(
            Path("mis_demo"), "--out", "-o", metavar="DIR", help="Output folder (images, store, PNG)."
        ),
        config: str | None = typer.Option(
            None, "--config", "-c", metavar=CONFIG_METAVAR, help=CONFIG_HELP
        ),
        set_: list[str] = typer.Option([], "--set", "-s", metavar=SET_METAVAR, help=SET_HELP),
        executor: str | None = typer.Option(
            None,
            "--executor",
            metavar="local|ray",
            help="'local' (default for the demo: in-process) or 'ray'.",
        ),
        n_images: int = typer.Option(
            8, "--images", min=1, max=8, metavar="N", help="How many bundled photos to process."
        ),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging."),
    ) -> int:
        """Run the offline demo: 8 photos bundled with scikit-image -> merge trees -> PNG.

        Uses the weights-free colour_texture backbone and the in-process executor (no
        download, no GPU, no Ray start-up); `--executor ray` runs the same on a local Ray.
        """
        from ..pipeline.demo import DEMO_OVERRIDES, run_demo
        from .preprocess import flag_sets, resolved_config_dir

        setup_logging(verbose)
        cfg = load_config(
            config, [*set_, *flag_sets(executor, None, False)], defaults=DEMO_OVERRIDES
        )
        store = out / "trees.zarr"
        parent, name = resolved_config_dir(store)
        write_resolved_config(cfg, parent, name=name)
        with Progress("demo", "images") as bar:
            res = run_demo(out, cfg, n_images=n_images, on_progress=bar)
        for line in res.preprocess.lines():
            typer.echo(line)
        typer.echo("")
        typer.echo(f"images     {res.image_dir}")
        typer.echo(f"store      {res.store}   (mis inspect {res.store})")
        typer.echo(f"figure     {res.figure}")
        typer.echo(f"config     {parent / name}")
        return res.preprocess.exit_code
