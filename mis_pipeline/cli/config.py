"""``mis config``: show the resolved configuration and every field's documentation."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from ..config import PipelineConfig
from ._common import CONFIG_HELP, SET_HELP, load_config


def register(app: typer.Typer) -> None:
    @app.command("config")
    def config_cmd(
        config: Optional[Path] = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
        set_: list[str] = typer.Option([], "--set", "-s", help=SET_HELP),
        docs: bool = typer.Option(False, "--docs", help="List every field with its default and meaning."),
    ) -> None:
        """Resolve and print the configuration (YAML), or document every field with --docs.

        Validation happens here exactly as in the other subcommands, so this is the quickest
        way to check a config file before a long run.
        """
        import yaml

        cfg = load_config(config, set_)
        if not docs:
            from ..config import to_dict

            typer.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False).rstrip())
            return
        for f in dataclasses.fields(PipelineConfig):
            section = getattr(cfg, f.name)
            if not dataclasses.is_dataclass(section):
                typer.echo(f"{f.name} = {section!r}\n    {f.metadata.get('doc', '')}")
                continue
            typer.echo(f"[{f.name}]  {type(section).__doc__.strip().splitlines()[0]}")
            for sf in dataclasses.fields(section):
                typer.echo(f"  {f.name}.{sf.name} = {getattr(section, sf.name)!r}")
                typer.echo(f"      {sf.metadata.get('doc', '')}")
