"""``mis preprocess``: images -> merge trees in a Zarr tree store (Ray or in-process).

Exit status: 0 every listed image is stored; 3 completed, but some images are recorded as
failed (``mis inspect STORE`` lists them by reason); 2 an error stopped the run (bad
configuration, unreadable input listing, store locked or made with other settings, hub
weights unreachable); 130 interrupted (Ctrl-C: committed images are kept, a rerun resumes);
143 terminated (SIGTERM, as a cluster scheduler sends before killing: handled like Ctrl-C).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
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
)

log = logging.getLogger(__name__)

#: Exit status after SIGTERM (128 + 15, the shell's convention).
EXIT_TERMINATED = 143


@contextlib.contextmanager
def _sigterm_as_interrupt(received: list[int]) -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does: the batch in hand is committed or dropped as a
    whole, the "interrupted: N images committed" line is printed, and the exit status is 143.
    Main thread only (elsewhere the signal keeps its handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def resolved_config_dir(out: Path) -> tuple[Path, str]:
    """Where the resolved YAML of a store goes: beside it, ``<store>.resolved_config.yaml``
    (:func:`mis_pipeline.store.resolved_config_path`; the store writes it)."""
    from ..store import resolved_config_path

    path = resolved_config_path(out)
    return path.parent, path.name


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


def register(app: typer.Typer) -> None:
    @app.command("preprocess")
    def preprocess_cmd(
        input: str = typer.Argument(
            ...,
            metavar="INPUT",
            help="Image folder (recursive), text file of paths, or fsspec URL.",
            show_default=False,
        ),
        out: Path = typer.Option(
            ...,
            "--out",
            "-o",
            metavar="STORE",
            help="Tree store to create or resume (a directory).",
            show_default=False,
        ),
        config: str | None = typer.Option(
            None, "--config", "-c", metavar=CONFIG_METAVAR, help=CONFIG_HELP
        ),
        set_: list[str] = typer.Option([], "--set", "-s", metavar=SET_METAVAR, help=SET_HELP),
        executor: str | None = typer.Option(
            None,
            "--executor",
            metavar="ray|local",
            help="'ray' (default; a cluster if one is given, else a local Ray once the corpus is long "
            "enough to pay for it) or 'local' (in-process, same results).",
        ),
        ray_address: str | None = typer.Option(
            None,
            "--ray-address",
            metavar="ADDRESS",
            help="Existing Ray cluster to use ('auto', 'ray://host:10001').",
        ),
        retry_failed: bool = typer.Option(
            False, "--retry-failed", help="Re-attempt images recorded as failed."
        ),
        progress: bool = typer.Option(
            True,
            "--progress/--no-progress",
            help="Progress on stderr: a bar on a terminal, else a line every few seconds.",
        ),
        verbose: int = typer.Option(
            1, "--verbose", "-v", count=True, help="More logging (-vv for debug)."
        ),
    ) -> int:
        """Preprocess images into merge trees: decode -> features -> Ward merge -> tree store.

        Resumable: rerun the same command after a crash or Ctrl-C; finished images are
        skipped. Exit status 0 = completed, 3 = completed with failures (bad images recorded
        with their reason), 2 = error, 130 = interrupted (Ctrl-C), 143 = terminated (SIGTERM).
        """
        from ..pipeline import PreprocessInterrupted, preprocess

        setup_logging(verbose)
        cfg = load_config(config, [*set_, *flag_sets(executor, ray_address, retry_failed)])
        # The store writes OUT.resolved_config.yaml itself, once the run is accepted (first
        # commit or a clean finish): a refused or failed run leaves the old file as it was.
        parent, name = resolved_config_dir(out)
        terminated: list[int] = []
        try:
            with _sigterm_as_interrupt(terminated), Progress("preprocess", "images", enabled=progress) as bar:
                result = preprocess(input, out, cfg, on_progress=bar)
        except PreprocessInterrupted as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(EXIT_TERMINATED if terminated else 130) from None
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: 0 images committed; run the same command again to resume",
                err=True,
            )
            raise typer.Exit(EXIT_TERMINATED if terminated else 130) from None
        for line in result.lines():
            typer.echo(line)
        typer.echo(f"resolved config  {parent / name}")
        return result.exit_code
