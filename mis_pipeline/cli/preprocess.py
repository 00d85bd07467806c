"""``mis preprocess``: images -> merge trees in a Zarr tree store (Ray or in-process).

Exit status: 0 every listed image is stored; 3 completed, but some images are recorded as
failed (``mis inspect STORE`` lists them by reason); 2 an error stopped the run (bad
configuration, unreadable input listing, store locked or made with other settings).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from ._common import CONFIG_HELP, SET_HELP, load_config, setup_logging, write_resolved_config

log = logging.getLogger(__name__)


def resolved_config_dir(out: Path) -> tuple[Path, str]:
    """Where the resolved YAML of a store goes: beside it, ``<store>.resolved_config.yaml``.

    (Inside the store directory a non-Zarr file would make Zarr warn when listing the group.)
    """
    out = Path(out)
    return out.parent, f"{out.name}.resolved_config.yaml"


def flag_sets(executor: str | None, ray_address: str | None, retry_failed: bool) -> list[str]:
    """``--set`` items for the explicit flags (applied last: flags beat YAML and --set)."""
    sets = []
    if executor is not None:
        sets.append(f"preprocess.executor={executor}")
    if ray_address is not None:
        sets.append(f"preprocess.ray_address={ray_address}")
    if retry_failed:
        sets.append("preprocess.retry_failed=true")
    return sets


class _Progress:
    """A rich progress bar: done/total, images/s and ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("preprocess"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("[progress.data.speed]{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self._bar.__enter__()
        return self

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            return
        import time

        if self._task is None:
            self._task = self._bar.add_task("preprocess", total=total, rate="- images/s")
            self._t0 = time.perf_counter()
        elapsed = time.perf_counter() - self._t0
        rate = f"{done / elapsed:.2f} images/s" if done and elapsed > 0 else "- images/s"
        self._bar.update(self._task, completed=done, total=total, rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def register(app: typer.Typer) -> None:
    @app.command("preprocess")
    def preprocess_cmd(
        input: str = typer.Argument(..., help="Image folder (recursive), text file of paths, or fsspec URL."),
        out: Path = typer.Option(..., "--out", "-o", help="Tree store to create or resume (a directory)."),
        config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
        set_: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
        executor: str | None = typer.Option(
            None, "--executor", help="'ray' (default; Ray Data) or 'local' (in-process, same results)."
        ),
        ray_address: str | None = typer.Option(
            None, "--ray-address", help="Existing Ray cluster to use ('auto', 'ray://host:10001')."
        ),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Re-attempt images recorded as failed."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
        verbose: int = typer.Option(1, "--verbose", "-v", count=True, help="More logging (-vv for debug)."),
    ) -> int:
        """Preprocess images into merge trees: decode -> features -> Ward merge -> tree store.

        Resumable: rerun the same command after a crash; finished images are skipped. Exit
        status 0 = completed, 3 = completed with failures (bad images recorded with their
        reason), 2 = error.
        """
        from ..pipeline import preprocess

        setup_logging(verbose)
        cfg = load_config(config, [*set_, *flag_sets(executor, ray_address, retry_failed)])
        parent, name = resolved_config_dir(out)
        write_resolved_config(cfg, parent, name=name)
        with _Progress(progress) as bar:
            result = preprocess(input, out, cfg, on_progress=bar)
        for line in result.lines():
            typer.echo(line)
        typer.echo(f"resolved config  {parent / name}")
        return result.exit_code
