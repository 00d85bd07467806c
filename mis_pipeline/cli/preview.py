"""``mis preview STORE --out DIR``: what the training data drawn from a tree store looks like."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import CONFIG_HELP, SET_HELP, load_config, setup_logging, write_resolved_config


def register(app: typer.Typer) -> None:
    @app.command("preview")
    def preview_cmd(
        store: Path = typer.Argument(..., help="Tree store directory written by `mis preprocess`.", show_default=False),
        out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Folder for the PNGs (created if missing).",
                                 show_default=False),
        n: int = typer.Option(8, "--n", "-n", min=1, metavar="N", help="How many images (the first N with a tree)."),
        samples: int = typer.Option(8, "--samples", min=1, metavar="N", help="Training samples shown per image."),
        seed: int = typer.Option(0, "--seed", min=0, metavar="SEED", help="Dataset seed (the samples are those of epoch 0)."),
        image_root: Path | None = typer.Option(
            None, "--image-root", metavar="DIR", help="Folder joined with each image id (for a store made elsewhere)."
        ),
        config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
        set_: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v: progress, -vv: debug."),
    ) -> None:
        """Write one PNG per image: the image, its merge tree cut at 2/4/8/16 regions, and a grid of
        the training samples drawn from it (proposal outlined, positive clicks green, negative red).

        The samples are exactly those `ProposalDataset(STORE, seed=SEED)` yields in epoch 0 under the
        data.* settings (--config / --set data.augment.crop_size=448 ...).
        """
        from ..data.preview import write_previews
        from ..store import TreeStore

        setup_logging(verbose)
        defaults = {"data": {"image_root": str(image_root)}} if image_root is not None else None
        cfg = load_config(config, set_, defaults=defaults)
        ts = TreeStore.open(store)
        paths = write_previews(ts, out, n_images=n, n_samples=samples, seed=seed, config=cfg.data)
        write_resolved_config(cfg, out)
        for p in paths:
            typer.echo(f"wrote {p}")
