"""``mis train``: train the interactive segmentation model (MIS proposals or annotated masks).

Exit status: 0 the run finished (or stopped at its --max-minutes budget); 2 an error stopped it before or during training (bad
configuration, missing data, a finished run directory without --overwrite); 130 interrupted
(Ctrl-C finishes the current step and saves the state; rerun the same command to resume).
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from ._common import (
    CONFIG_HELP,
    CONFIG_METAVAR,
    SET_HELP,
    SET_METAVAR,
    load_config,
    setup_logging,
    write_resolved_config,
)

log = logging.getLogger(__name__)

#: Preset used when --config is not given, per mode.
DEFAULT_PRESETS = {"mis": "mis_sbd", "finetune": "finetune", "refcut": "refcut"}


def flag_sets(mode: str, steps: int | None, workers: int | None, init: str | None,
              data_ratio: float | None, max_minutes: float | None = None) -> list[str]:
    """``--set`` items for the explicit flags (applied last: flags beat the preset and --set)."""
    sets = [f"train.mode={mode}"]
    if steps is not None:
        sets.append(f"train.steps={steps}")
    if workers is not None:
        sets.append(f"train.workers={workers}")
    if init is not None:
        sets.append(f"train.init={init!s}")
    if data_ratio is not None:
        sets.append(f"data.data_ratio={data_ratio}")
    if max_minutes is not None:
        sets.append(f"train.max_minutes={max_minutes}")
    return sets


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        out: Path = typer.Option(..., "--out", "-o", metavar="RUN", help="Run directory (created, or resumed if it holds a run)."),
        mode: str = typer.Option("mis", "--mode", "-m", metavar="MODE", help="'mis' (tree store, MIS loss), 'finetune' "
                                 "(annotated masks, normalised focal loss) or 'refcut' (reference pairs)."),
        parts: Path | None = typer.Option(
            None, "--parts", metavar="DIR", help="Mode refcut: a part dataset (images/ and part_labels/, the CarParts layout)."),
        reference_store: Path | None = typer.Option(
            None, "--reference-store", metavar="STORE", help="Mode refcut without --parts: tree store of the references mined "
            "for the targets of --store (default: --store itself)."),
        store: Path | None = typer.Option(None, "--store", metavar="STORE", help="Tree store (mode mis), from mis preprocess."),
        data: Path | None = typer.Option(
            None, "--data", metavar="DATA", help="Annotated data (mode finetune): a folder with pairs.csv, a COCO-style "
            "JSON file, or an SBD root."),
        data_format: str = typer.Option("auto", "--data-format", metavar="FORMAT", help="auto, folder, coco, sbd or voc."),
        annotations: Path | None = typer.Option(
            None, "--annotations", metavar="FILE", help="COCO JSON file when --data is the image folder (--data-format coco)."),
        split: str | None = typer.Option(None, "--split", metavar="NAME", help="Split of sbd / voc data (default: train)."),
        init: str | None = typer.Option(
            None, "--init", metavar="CHECKPOINT", help="Checkpoint to start from (a RUN or checkpoint/ folder); required by finetune."),
        data_ratio: float | None = typer.Option(
            None, "--data-ratio", min=0.0, max=1.0, metavar="FRACTION",
            help="finetune: fraction of the annotated objects used (seeded subset, e.g. 0.01, 0.05, 0.1)."),
        steps: int | None = typer.Option(
            None, "--steps", min=1, metavar="N", help="Run length in optimizer steps (overrides the preset's epochs)."),
        workers: int | None = typer.Option(
            None, "--workers", "-w", min=1, metavar="N", help="1: a plain loop in this process; N > 1: Ray Train with N workers."),
        max_minutes: float | None = typer.Option(
            None, "--max-minutes", min=0.0, metavar="MINUTES", help="Stop after this many minutes (state saved; rerun to continue)."),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Delete a finished (or interrupted) run in --out and train from scratch."),
        config: str | None = typer.Option(
            None, "--config", "-c", metavar=CONFIG_METAVAR,
            help=CONFIG_HELP + " Default: mis_sbd (mode mis) or finetune (mode finetune); tiny for CPU."),
        set_: list[str] = typer.Option([], "--set", "-s", metavar=SET_METAVAR, help=SET_HELP),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="-v: a log line per logged step."),
    ) -> None:
        """Train the SimpleClick model with RITM iterative training into RUN.

        mis train --mode mis --store trees.zarr --out runs/mis --config tiny --steps 500

        mis train --mode finetune --data data/sbd --init runs/mis --out runs/ft --data-ratio 0.1

        mis train --mode refcut --parts data/CarParts --init runs/ft --out runs/refcut

        Writes RUN/checkpoint/ (model.safetensors + model.json), RUN/metrics.jsonl,
        RUN/loss_curve.png, RUN/state/ and the resolved configuration. Interrupted? Rerun the same
        command: it resumes from RUN/state/ and ends with the same parameters.
        """
        from ..errors import ConfigError
        from ..train import run_training

        if mode not in DEFAULT_PRESETS:
            raise ConfigError("--mode", mode, "'mis', 'finetune' or 'refcut'")
        setup_logging(verbose)
        cfg = load_config(config if config is not None else DEFAULT_PRESETS[mode],
                          [*set_, *flag_sets(mode, steps, workers, init, data_ratio, max_minutes)])
        if data_ratio is not None and mode != "finetune":
            raise ConfigError("--data-ratio", data_ratio, "only with --mode finetune")

        def on_start(resolved: object) -> None:
            write_resolved_config(resolved, out)

        result = run_training(cfg, out, store=store, data=data, data_kind=data_format,
                              annotations=annotations, split=split, overwrite=overwrite,
                              progress=progress, on_start=on_start, parts=parts, reference_store=reference_store)
        for line in result.lines():
            typer.echo(line)
        if result.stopped is not None and result.stopped.startswith("SIG"):
            raise typer.Exit(130)
