"""``mis evaluate``: the NoC protocol on a benchmark, or IoU curves of several results."""

from __future__ import annotations

import dataclasses
import logging
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

logger = logging.getLogger(__name__)

#: Files whose presence means an --out folder already holds evaluation results.
RESULT_FILES = ("summary.json", "per_sample.json", "per_sample.csv", "summary.txt")


def existing_results(out: Path) -> list[str]:
    """Names of the result files already in ``out`` (empty if none or no folder)."""
    return [name for name in RESULT_FILES if (Path(out) / name).exists()]


class _RunningNoC:
    """Progress callback of the protocol: done/total and the running mean NoC@90."""

    def __init__(self, bar: Progress, max_clicks: int, target: float = 0.9) -> None:
        self.bar = bar
        self.max_clicks = max_clicks
        self.target = target
        self.total_noc = 0

    def __call__(self, done: int, total: int, r) -> None:  # type: ignore[no-untyped-def]
        noc = r.noc(self.target, self.max_clicks)[0]
        self.total_noc += noc
        logger.debug("[%d/%d] %s NoC@90=%d IoU@1=%.3f", done, total, r.sample_id, noc, r.ious[0])
        self.bar(done, total, f"NoC@{round(self.target * 100)} {self.total_noc / done:.2f}")


def _usage_error(message: str) -> typer.Exit:
    """Print a one-line usage error and return the exit to raise (status 2, like bad config)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate_cmd(
        results: list[Path] = typer.Argument(
            None,
            metavar="RESULTS",
            help="With --compare: result folders or summary.json files to plot.",
            show_default=False,
        ),
        dataset: str | None = typer.Option(
            None,
            "--dataset",
            "-d",
            metavar="NAME",
            help="grabcut, berkeley, davis, coco_mval, sbd, voc, folder or parts.",
        ),
        data: Path | None = typer.Option(
            None, "--data", metavar="DIR", help="Dataset root folder (published layout)."
        ),
        predictor: str | None = typer.Option(
            None,
            "--predictor",
            "-p",
            metavar="NAME",
            help="tree, graphcut, oracle, gt or empty (default: evaluate.predictor).",
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            "-o",
            metavar="PATH",
            help="Output folder (evaluation) or image file (--compare).",
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace the results an --out folder already holds."
        ),
        checkpoint: Path | None = typer.Option(
            None, "--checkpoint", metavar="RUN", help="Trained model (training run folder or its checkpoint/ "
            "folder) for --predictor model (evaluate.model.checkpoint).",
        ),
        reference: str | None = typer.Option(
            None, "--reference", metavar="auto|none", help="RefCut references on --dataset parts: 'auto' "
            "gives each sample the next image's reference masks (evaluate.reference).",
        ),
        cfr: int | None = typer.Option(
            None, "--cfr", min=0, metavar="N", help="Cascade-Forward Refinement for --predictor model: N more "
            "forwards per click on the same clicks (cfr.steps; 0 = off).",
        ),
        acfr: int | None = typer.Option(
            None, "--acfr", min=1, metavar="N", help="Adaptive CFR: at most N more forwards, stopping when at "
            "most cfr.threshold (20) pixels change.",
        ),
        zoom: str | None = typer.Option(
            None, "--zoom", metavar="MODE", help="Zoom of --predictor model "
            "(evaluate.model.zoom): simpleclick (SimpleClick's zoom-in), taiz (VTMR's "
            "target-aware zoom) or none.",
        ),
        compare: bool = typer.Option(
            False,
            "--compare",
            help="Plot the IoU-vs-clicks curves of the RESULTS given as arguments into --out.",
        ),
        limit: int | None = typer.Option(
            None, "--limit", min=1, metavar="N", help="Evaluate only the first N samples."
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            "-w",
            min=1,
            metavar="N",
            help="Worker processes (default: evaluate.workers, whose default is the usable cores).",
        ),
        split: str | None = typer.Option(
            None, "--split", metavar="NAME", help="Split file for sbd / voc (default: val)."
        ),
        title: str | None = typer.Option(
            None, "--title", metavar="TEXT", help="Figure title (--compare)."
        ),
        config: str | None = typer.Option(
            None, "--config", "-c", metavar=CONFIG_METAVAR, help=CONFIG_HELP
        ),
        set_: list[str] = typer.Option([], "--set", "-s", metavar=SET_METAVAR, help=SET_HELP),
        progress: bool = typer.Option(
            True,
            "--progress/--no-progress",
            help="Progress on stderr: a bar on a terminal, else a line every few seconds.",
        ),
        verbose: int = typer.Option(
            0, "--verbose", "-v", count=True, help="-v: info, -vv: debug (one line per sample)."
        ),
    ) -> None:
        """Run the standard click protocol (NoC@80/85/90/95, NoF, IoU per click) on a dataset.

        Writes OUT/summary.json, OUT/per_sample.csv, OUT/per_sample.json, OUT/summary.txt and
        the resolved configuration, and prints the summary table. An OUT that already holds
        results is refused unless --overwrite is given. With --compare, draws the
        IoU-vs-clicks curves of several earlier results into one PNG instead:
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
        from ..evaluate.runner import usable_cores

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
        out_dir = Path(str(out))
        held = existing_results(out_dir)
        if held and not overwrite:
            raise _usage_error(
                f"--out {out_dir} already holds results ({', '.join(held)}); "
                "choose a new folder or add --overwrite"
            )
        defaults: dict = {"evaluate": {}}
        if predictor is not None:
            defaults["evaluate"]["predictor"] = predictor
        if workers is not None:
            defaults["evaluate"]["workers"] = workers
        if checkpoint is not None:
            defaults["evaluate"]["model"] = {"checkpoint": str(checkpoint)}
        if reference is not None:
            if reference not in ("auto", "none"):
                raise _usage_error(f"--reference must be 'auto' or 'none', got {reference!r}")
            defaults["evaluate"]["reference"] = reference
        if cfr is not None and acfr is not None:
            raise _usage_error("give --cfr N or --acfr N, not both")
        if cfr is not None:
            defaults["cfr"] = {"steps": cfr, "adaptive": False}
        if acfr is not None:
            defaults["cfr"] = {"steps": acfr, "adaptive": True}
        if zoom is not None:
            defaults["evaluate"].setdefault("model", {})["zoom"] = zoom
        cfg = load_config(config, set_, defaults=defaults)
        options = {"split": split} if split is not None else {}
        ds = open_dataset(str(dataset), str(data), **options)
        indices = range(min(limit, len(ds))) if limit is not None else None
        n = len(indices) if indices is not None else len(ds)
        if cfg.evaluate.workers is None:  # record the number used in the resolved config
            cfg = dataclasses.replace(
                cfg,
                evaluate=dataclasses.replace(cfg.evaluate, workers=min(usable_cores(), max(n, 1))),
            )
        try:
            with Progress("evaluate", "samples", enabled=progress) as bar:
                result = evaluate_dataset(
                    ds, cfg, indices=indices, progress=_RunningNoC(bar, cfg.evaluate.max_clicks)
                )
        except KeyboardInterrupt:
            typer.echo("interrupted: no results written", err=True)
            raise typer.Exit(130) from None
        write_results(result, out_dir)
        write_resolved_config(cfg, out_dir)
        typer.echo(format_summary([result.summary()]))
        typer.echo(f"wrote {out_dir / 'summary.json'} and {out_dir / 'per_sample.csv'}")
