"""The ``mis`` command line: thin subcommands over the library.

Each subcommand lives in its own module exposing ``register(app)``; it parses its options,
resolves the configuration (defaults < ``--config`` preset or YAML < ``--set``), calls one
library function and writes its outputs with the resolved configuration beside them. Adding a
subcommand is adding its module name to :data:`_COMMAND_MODULES`.

Exit status of every subcommand: 0 success, 2 a usage or configuration error (one line on
stderr, never a traceback), 130 interrupted (Ctrl-C); ``mis preprocess`` adds 3 (completed
with failed images).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer
import typer.core

from .._version import __version__
from ..errors import MISError
from ._common import CONFIG_METAVAR, SET_METAVAR

# Subcommand modules, in the order `mis --help` lists them (each has `register(app)`).
_COMMAND_MODULES: tuple[str, ...] = ("config", "preprocess", "inspect", "preview", "demo", "train", "evaluate", "annotate")

#: Exit status of a usage or configuration error (click's convention).
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130


def _tidy_params(params: list[Any]) -> list[Any]:
    """Help placeholders as a user reads them: no ``<bool>`` after a flag, arguments by name.

    Typer renders a parameter without ``metavar`` by its Python type (``<bool>``,
    ``<list[str]>``); flags and counters take no value, so they get an empty placeholder,
    ``--set``/``--config`` get ``KEY=VALUE``/``PRESET|FILE`` in every subcommand, other
    repeatable options their value type (``TEXT``), and an argument is shown by its upper-case
    name (``INPUT``) without a type. Explicit metavars of options are kept.
    """
    for p in params:
        if getattr(p, "param_type_name", "") == "argument":
            if p.metavar is None:
                p.metavar = (p.name or "arg").upper()
            # The name already says what to give; typer would add the Python type (<str>).
            p.display_type_rich = _no_type
        elif p.metavar is not None:
            continue
        elif getattr(p, "is_flag", False) or getattr(p, "count", False):
            p.metavar = ""
        elif "--set" in p.opts:
            p.metavar = SET_METAVAR
        elif "--config" in p.opts:
            p.metavar = CONFIG_METAVAR
        elif getattr(p, "multiple", False):  # typer: <list[str]>; click: TEXT
            p.metavar = str(getattr(p.type, "name", "value")).upper()
    return params


def _no_type(ctx: Any) -> None:
    return None


def _usage_pieces(params: list[Any], ctx: Any) -> list[str]:
    """``[OPTIONS] INPUT [RESULTS]...`` (required arguments bare, optional ones bracketed)."""
    pieces = ["[OPTIONS]"]
    for p in params:
        if getattr(p, "param_type_name", "") != "argument":
            continue
        name = p.metavar or (p.name or "arg").upper()
        piece = name if p.required else f"[{name}]"
        pieces.append(piece + ("..." if p.nargs != 1 else ""))
    return pieces


class MISCommand(typer.core.TyperCommand):
    """A subcommand whose help shows placeholders as words (see :func:`_tidy_params`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_params(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        return _usage_pieces(self.get_params(ctx), ctx)


class MISGroup(typer.core.TyperGroup):
    """The ``mis`` group, with tidy placeholders (see :func:`_tidy_params`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _tidy_params(super().get_params(ctx))


class MISTyper(typer.Typer):
    """``typer.Typer`` whose commands default to :class:`MISCommand` (tidy help)."""

    def command(self, *args: Any, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or MISCommand, **kwargs)


app = MISTyper(
    name="mis",
    cls=MISGroup,
    help=(
        "mis-pipeline: turn unlabeled images into multi-granularity region proposals (Ward "
        "merge trees over ViT patch features), and evaluate click-based interactive "
        "segmentation with the standard NoC protocol.\n\n"
        "Every subcommand takes --config PRESET|FILE (a shipped preset such as offline, paper, "
        "demo, or a YAML file of overrides) and --set KEY=VALUE; the resolved configuration is "
        "written beside its outputs."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"max_content_width": 120},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mis-pipeline {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """mis-pipeline command line."""


for _name in _COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """``(ClickException types, UsageError types)`` of the click typer raises, and of click.

    Recent typer bundles its own copy of click (``typer._click``), whose exceptions are not
    ``click.ClickException``; older typer raises click's own. ``typer.BadParameter`` is the
    public name of the bundled ``BadParameter``, so its bases are the bundled classes.
    """
    base = {c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"}
    usage = {c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"}
    try:
        import click
    except ImportError:  # pragma: no cover - typer without click installed beside it
        pass
    else:
        base.add(click.ClickException)
        usage.add(click.UsageError)
    return tuple(base), tuple(usage)


def _show_usage_error(exc: Any) -> int:
    """Usage line, then ``error: <message>`` on one line (stderr); return the exit status."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help is the answer
        typer.echo(exc.format_message())
        return 0
    if ctx is not None:
        typer.echo(ctx.get_usage(), err=True)
    message = " ".join(str(exc.format_message()).split())
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    typer.secho(f"error: {message}{hint}", fg=typer.colors.RED, err=True)
    return int(getattr(exc, "exit_code", EXIT_USAGE) or EXIT_USAGE)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mis`` console script; returns the exit status.

    Library errors (:class:`~mis_pipeline.errors.MISError`) and usage errors become one line
    on stderr with exit status 2; Ctrl-C exits 130.
    """
    click_errors, usage_errors = _click_exception_types()
    try:
        result = app(args=argv, prog_name="mis", standalone_mode=False)
    except MISError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        return EXIT_USAGE
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        typer.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except usage_errors as exc:
        return _show_usage_error(exc)
    except click_errors as exc:
        typer.secho(f"error: {exc.format_message()}", fg=typer.colors.RED, err=True)
        return int(getattr(exc, "exit_code", 1) or 1)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
