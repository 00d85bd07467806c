"""``mis evaluate``: the NoC protocol on a benchmark, or IoU curves of several results."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from ._common import CONFIG_HELP, SET_HELP, load_config, setup_logging, write_resolved_config

logger = logging.getLogger(__name__)


def _usage_error(message: str) -> typer.Exit:
    """Print a one-line usage error and return the exit to raise (status 2, like bad config)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        results: list[Path] = typer.Argument(
            None, help="With --compare: result folders or summary.json files to plot.", show_default=False
        ),
        dataset: str | None = typer.Option(
            None, "--dataset", "-d",
            help="grabcut, berkeley, davis, coco_mval, sbd, voc, folder or parts.",
        ),
        data: Path | None = typer.Option(None, "--data", help="Dataset root folder (published layout)."),
        predictor: str | None = typer.Option(
            None, "--predictor", "-p", help="tree, graphcut, oracle, gt or empty (default: evaluate.predictor)."
        ),
        out: Path | None = typer.Option(
            None, "--out", "-o", help="Output folder (evaluation) or image file (--compare)."
        ),
        compare: bool = typer.Option(
            False, "--compare", help="Plot the IoU-vs-clicks curves of the RESULTS given as arguments into --out."
        ),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate only the first N samples."),
        workers: int | None = typer.Option(
            None, "--workers", "-w", min=1, help="Worker processes (default: evaluate.workers)."
        ),
        split: str | None = typer.Option(None, "--split", help="Split file for sbd / voc (default: val)."),
        title: str | None = typer.Option(None, "--title", help="Figure title (--compare)."),
        config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
        set_: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v: progress, -vv: debug."),
    ) -> None:
        """Run the standard click protocol (NoC@80/85/90/95, NoF, IoU per click) on a dataset.

        Writes OUT/summary.json, OUT/per_sample.csv, OUT/per_sample.json, OUT/summary.txt and
        the resolved configuration, and prints the summary table. With --compare, draws the IoU-vs-clicks
        curves of several earlier results into one PNG instead:
        mis evaluate --compare runs/tree runs/graphcut --out curves.png
        """
        from ..evaluate import (
            evaluate_dataset,
            format_summary,
            load_summary,
            open_dataset,
            write_results,
        )
        from ..evaluate.plots import plot_curves

        setup_logging(verbose)
        if compare:
            if not results:
                raise _usage_error("--compare needs the result folders or summary.json files to plot")
            if out is None:
                raise _usage_error("--compare needs --out, the image file to write")
            summaries = [load_summary(r) for r in results]
            plot_curves(summaries, out, title=title)
            typer.echo(format_summary(summaries))
            typer.echo(f"wrote {out}")
            return
        if results:
            raise _usage_error(f"positional arguments {[str(r) for r in results]} are only used with --compare")
        missing = [name for name, v in (("--dataset", dataset), ("--data", data), ("--out", out)) if v is None]
        if missing:
            raise _usage_error("evaluation needs " + ", ".join(missing))
        defaults: dict = {"evaluate": {}}
        if predictor is not None:
            defaults["evaluate"]["predictor"] = predictor
        if workers is not None:
            defaults["evaluate"]["workers"] = workers
        cfg = load_config(config, set_, defaults=defaults)
        options = {"split": split} if split is not None else {}
        ds = open_dataset(str(dataset), str(data), **options)
        indices = range(min(limit, len(ds))) if limit is not None else None

        def progress(done: int, total: int, r) -> None:  # type: ignore[no-untyped-def]
            logger.info("[%d/%d] %s NoC@90=%d IoU@1=%.3f", done, total, r.sample_id, r.noc(0.9, cfg.evaluate.max_clicks)[0], r.ious[0])

        result = evaluate_dataset(ds, cfg, indices=indices, progress=progress)
        out_dir = Path(str(out))
        write_results(result, out_dir)
        write_resolved_config(cfg, out_dir)
        typer.echo(format_summary([result.summary()]))
        typer.echo(f"wrote {out_dir / 'summary.json'} and {out_dir / 'per_sample.csv'}")
