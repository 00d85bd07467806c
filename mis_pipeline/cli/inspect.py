"""``mis inspect STORE``: print the summary of a tree store (counts, failures, sizes)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("inspect")
    def inspect_cmd(
        store: Path = typer.Argument(..., help="Tree store directory written by `mis preprocess`."),
        failures: bool = typer.Option(False, "--failures", help="Also list every failed image with its reason."),
        proposals: bool = typer.Option(
            False, "--proposals", help="Also sample training proposals: area and depth distribution + histogram PNG."
        ),
        draws: int = typer.Option(2000, "--draws", min=1, metavar="N", help="With --proposals: how many proposals to draw."),
        plot: Path | None = typer.Option(
            None, "--plot", metavar="PNG", help="With --proposals: histogram PNG (default: STORE's name + .proposals.png beside it)."
        ),
        seed: int = typer.Option(0, "--seed", min=0, metavar="SEED", help="With --proposals: seed of the draws."),
        set_: list[str] = typer.Option(
            [], "--set", "-s", help="With --proposals: override e.g. data.proposals.sampler=uniform."
        ),
    ) -> None:
        """Print a tree store's summary: images stored and failed by reason, bytes per merge.

        Bytes per merge is the whole store on disk divided by the number of merges, shown as
        its four parts: structure (trees/child_*), costs (trees/cost), records (one row per
        image) and metadata (the zarr.json files, with the resolved configuration).
        """
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
        if proposals:
            from ..data.stats import proposal_stats
            from ._common import load_config

            cfg = load_config(None, set_)
            stats = proposal_stats(ts, draws, seed=seed, config=cfg.data.proposals)
            for line in stats.lines():
                typer.echo(line)
            out = plot if plot is not None else store.parent / f"{store.name.split('.')[0]}.proposals.png"
            typer.echo(f"histogram        {stats.plot(out)}")
