"""The ``mis`` command line: thin subcommands over the library.

Each subcommand lives in its own module exposing ``register(app)``; it parses its options,
resolves the configuration (defaults < ``--config`` YAML < ``--set``), calls one library
function and writes its outputs with the resolved configuration beside them.
"""

from __future__ import annotations

import importlib
import sys

import typer

from .._version import __version__
from ..errors import MISError

# Subcommand modules, in the order `mis --help` lists them.
_COMMAND_MODULES: tuple[str, ...] = ("config", "preprocess", "inspect", "demo", "evaluate")

app = typer.Typer(
    name="mis",
    help=(
        "mis-pipeline: turn unlabeled images into multi-granularity region proposals (Ward "
        "merge trees over ViT patch features), and evaluate click-based interactive "
        "segmentation with the standard NoC protocol.\n\n"
        "Every subcommand takes --config FILE (YAML overrides) and --set section.key=value; "
        "the resolved configuration is written beside its outputs."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mis-pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """mis-pipeline command line."""


for _name in _COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mis`` console script. Library errors become one clear line."""
    try:
        result = app(args=argv, standalone_mode=False)
    except MISError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
