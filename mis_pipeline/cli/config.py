"""``mis config``: show the resolved configuration, every field's documentation, or the presets."""

from __future__ import annotations

import dataclasses

import typer

from ..config import PipelineConfig
from ._common import (
    CONFIG_HELP,
    CONFIG_METAVAR,
    SET_HELP,
    SET_METAVAR,
    load_config,
    preset_description,
    preset_names,
)


def register(app: typer.Typer) -> None:
    @app.command("config")
    def config_cmd(
        config: str | None = typer.Option(
            None, "--config", "-c", metavar=CONFIG_METAVAR, help=CONFIG_HELP
        ),
        set_: list[str] = typer.Option([], "--set", "-s", metavar=SET_METAVAR, help=SET_HELP),
        docs: bool = typer.Option(
            False, "--docs", help="List every field with its default and meaning."
        ),
        list_: bool = typer.Option(
            False, "--list", help="List the presets --config accepts by name, and exit."
        ),
    ) -> None:
        """Resolve and print the configuration (YAML), document every field (--docs), or list
        the presets (--list).

        Validation happens here exactly as in the other subcommands, so this is the quickest
        way to check a config file before a long run. `mis config --config paper` shows what
        a preset sets.
        """
        import yaml

        if list_:
            names = preset_names()
            width = max((len(n) for n in names), default=0)
            for name in names:
                typer.echo(f"{name:<{width}}  {preset_description(name)}")
            return
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
