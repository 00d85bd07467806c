"""``mis annotate``: click-to-segment annotation of a folder of images in the browser."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from ._common import CONFIG_HELP, SET_HELP, load_config, setup_logging, write_resolved_config

logger = logging.getLogger(__name__)


def _usage_error(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    from ..annotate.server import AnnotateSettings

    defaults = AnnotateSettings()

    @app.command("annotate")
    def annotate_cmd(
        images: Path = typer.Argument(..., help="Folder of images to annotate (searched recursively).",
                                      show_default=False),
        out: Path = typer.Option(..., "--out", "-o", metavar="MASKS", help="Folder for the masks (one PNG per image named after its stem, "
                                 "annotations.json, pairs.csv); created if missing.", show_default=False),
        predictor: str | None = typer.Option(
            None, "--predictor", "-p", metavar="NAME", help="tree, graphcut or model (default: evaluate.predictor; model "
            "when --checkpoint is given)."
        ),
        checkpoint: Path | None = typer.Option(
            None, "--checkpoint", metavar="RUN", help="Training run folder RUN (or RUN/checkpoint) for --predictor model."
        ),
        host: str = typer.Option(defaults.host, "--host", metavar="HOST", help="Address to listen on; anything but loopback "
                                 "exposes the images and the mask folder to the network."),
        port: int = typer.Option(defaults.port, "--port", min=1, max=65535, metavar="PORT", help="Port to listen on."),
        config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
        set_: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v: progress, -vv: debug."),
    ) -> None:
        """Serve a local web page to annotate IMAGES with clicks; masks are saved into --out.

        Left click adds a positive point, right click (or shift-click) a negative one; z undo,
        s save, n/p next/previous, r reset. The saved folder is a `--dataset folder` input of
        `mis evaluate` (pairs.csv) and a fine-tuning dataset (pairs.csv or annotations.json).
        """
        from ..annotate.server import Annotator, is_loopback, serve

        setup_logging(max(verbose, 1))
        if not images.is_dir():
            raise _usage_error(f"IMAGES {str(images)!r} is not a folder")
        if out.exists() and not out.is_dir():
            raise _usage_error(f"--out {str(out)!r} exists and is not a folder")
        if checkpoint is not None:
            if predictor not in (None, "model"):
                raise _usage_error(f"--checkpoint is for --predictor model, not {predictor!r}")
            predictor = "model"
        overrides: dict = {"evaluate": {}}
        if predictor is not None:
            overrides["evaluate"]["predictor"] = predictor
        if checkpoint is not None:
            overrides["evaluate"]["model"] = {"checkpoint": str(checkpoint)}
        cfg = load_config(config, set_, defaults=overrides)
        name = cfg.evaluate.predictor
        annotator = Annotator(images, out, name, cfg, AnnotateSettings(host=host, port=port))
        write_resolved_config(cfg, out)
        if not is_loopback(host):
            typer.secho(
                f"warning: listening on {host}: anyone who can reach this machine can see the images "
                f"and overwrite masks in {out}; use the default --host 127.0.0.1 unless you mean it",
                fg=typer.colors.YELLOW, err=True,
            )
        typer.echo("warming up the predictor ...")
        annotator.warmup()
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"mis annotate: {len(annotator.images)} images, predictor {name}, masks -> {out}")
        typer.echo(f"open http://{shown}:{port}/ in a browser (Ctrl+C stops)")
        serve(annotator, host, port)
