"""``mis inspect STORE``: print the summary of a tree store (counts, failures, sizes)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("inspect")
    def inspect_cmd(
        store: Path = typer.Argument(..., help="Tree store directory written by `mis preprocess`."),
        failures: bool = typer.Option(False, "--failures", help="Also list every failed image with its reason."),
    ) -> None:
        """Print a tree store's summary: images stored and failed by reason, bytes per merge."""
        from ..store import TreeStore

        ts = TreeStore.open(store)
        for line in ts.summary().lines():
            typer.echo(line)
        if failures:
            status = ts.column("status")
            ids, reasons, messages = ts.column("image_id"), ts.column("reason"), ts.column("message")
            for i in range(len(ts)):
                if status[i] != 0:
                    typer.echo(f"failed  {ids[i]}  [{reasons[i]}]  {messages[i]}")
