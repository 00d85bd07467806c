"""Helpers shared by the CLI subcommands and ``stages/``: config resolution and output.

This is the only place that reads YAML: the library itself takes dataclasses.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..config import PipelineConfig, from_dict, set_path, to_dict
from ..errors import ConfigError

__all__ = [
    "load_config",
    "preset_names",
    "preset_description",
    "resolve_config_source",
    "parse_set",
    "read_yaml_overrides",
    "write_resolved_config",
    "CONFIG_HELP",
    "SET_HELP",
    "setup_logging",
    "stderr_console",
    "Progress",
]

RESOLVED_CONFIG_NAME = "resolved_config.yaml"

#: Package holding the presets: every ``<name>.yaml`` in it is the preset ``name``.
PRESETS_PACKAGE = "mis_pipeline.presets"

CONFIG_HELP = (
    "A preset name (offline, paper, demo, ...: see `mis config --list`) or a YAML file of "
    "overrides; applied before --set."
)
CONFIG_METAVAR = "PRESET|FILE"
SET_HELP = (
    "Override one field, e.g. --set io.max_side=1024 (the value is read as YAML). "
    "Repeatable; applied after --config."
)
SET_METAVAR = "KEY=VALUE"


def _preset_dir() -> Any:
    from importlib.resources import files

    return files(PRESETS_PACKAGE)


def preset_names() -> list[str]:
    """Names of the shipped presets (``<name>.yaml`` files of :data:`PRESETS_PACKAGE`), sorted."""
    return sorted(
        f.name[: -len(".yaml")]
        for f in _preset_dir().iterdir()
        if f.name.endswith(".yaml") and not f.name.startswith((".", "_"))
    )


def _preset_text(name: str) -> str:
    return _preset_dir().joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def preset_description(name: str) -> str:
    """The first comment line of preset ``name`` (its one-line description), or ``""``."""
    for line in _preset_text(name).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()
        if stripped:
            break
    return ""


def resolve_config_source(value: str | Path) -> tuple[str, str]:
    """``--config VALUE`` -> ``(label, YAML text)``: a preset name or a YAML file path.

    A value with no path separator and no ``.yaml``/``.yml`` suffix is looked up among the
    presets first (so ``--config offline`` works from any directory); anything else, or a name
    that is not a preset, is read as a file. The label names the source in error messages.
    """
    text = str(value)
    names = preset_names()
    looks_like_path = any(sep in text for sep in ("/", "\\")) or text.endswith((".yaml", ".yml"))
    if not looks_like_path and text in names:
        return f"preset {text!r}", _preset_text(text)
    p = Path(text)
    if p.is_file():
        return str(p), p.read_text(encoding="utf-8")
    raise ConfigError(
        "--config",
        text,
        f"a preset name ({', '.join(names)}) or an existing YAML file",
    )


def read_yaml_overrides(path: str | Path) -> dict[str, Any]:
    """Read a preset or YAML overrides file into a nested dict (empty means no overrides)."""
    import yaml

    label, raw = resolve_config_source(path)
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError("--config", label, f"valid YAML ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            "--config", label, "a YAML mapping of sections, e.g. 'features: {backbone: ...}'"
        )
    return data


def parse_set(item: str) -> tuple[str, Any]:
    """Split ``"section.key=value"``; the value is parsed as a YAML scalar/list."""
    import yaml

    if "=" not in item:
        raise ConfigError("--set", item, "KEY=VALUE with a dotted key, e.g. features.batch_size=8")
    key, raw = item.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(
    config_file: str | Path | None = None,
    sets: Iterable[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Resolve a :class:`PipelineConfig` from subcommand defaults, a preset or YAML file and ``--set``.

    ``config_file`` is a preset name (``"offline"``, ``"paper"``, ``"demo"``, any
    ``<name>.yaml`` of :data:`PRESETS_PACKAGE`) or a YAML file path (:func:`resolve_config_source`).
    Precedence (lowest first): dataclass defaults, ``defaults`` (what a subcommand's own flags
    set), the YAML file, then each ``--set`` in order. Raises ConfigError before any work starts.
    """
    data: dict[str, Any] = _merge({}, defaults or {})
    if config_file is not None:
        data = _merge(data, read_yaml_overrides(config_file))
    for item in sets:
        key, value = parse_set(item)
        set_path(data, key, value)
    return from_dict(PipelineConfig, data)


def write_resolved_config(cfg: Any, out_dir: str | Path, name: str = RESOLVED_CONFIG_NAME) -> Path:
    """Write the resolved configuration (YAML, with the package version) into ``out_dir``."""
    import yaml

    from .._version import __version__

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    payload = {"mis_pipeline_version": __version__, **to_dict(cfg)}
    path.write_text(yaml.safe_dump(payload, sort_keys=False), encoding="utf-8")
    return path


def dump_json(obj: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def stderr_console() -> Any:
    """The one rich Console of a CLI run, on stderr (stdout is for results only)."""
    global _CONSOLE
    if _CONSOLE is None:
        from rich.console import Console

        _CONSOLE = Console(stderr=True)
    return _CONSOLE


_CONSOLE: Any = None


def setup_logging(verbose: int = 0) -> None:
    """Console logging for CLI runs, on stderr (the library only creates loggers).

    ``verbose``: 0 warnings, 1 info, 2 or more debug for this package's loggers (other
    libraries stay at info: numba's debug output alone would slow a run down many times).
    """
    level = logging.WARNING if verbose <= 0 else logging.INFO
    logging.getLogger("mis_pipeline").setLevel(logging.DEBUG if verbose >= 2 else logging.NOTSET)
    try:
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(
            console=stderr_console(), show_path=False, rich_tracebacks=False
        )
        fmt = "%(message)s"
    except ImportError:  # pragma: no cover - rich is a dependency
        handler = logging.StreamHandler(sys.stderr)
        fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=level, format=fmt, handlers=[handler], force=True)


class Progress:
    """Progress of a long CLI run: a live bar on a terminal, a plain line every few seconds
    otherwise (both on stderr).

    Call as ``progress(done, total, info="")`` after each unit of work; ``info`` is shown
    beside the counts (e.g. the running NoC@90). The bar shows done/total, percent, rate,
    elapsed time and ETA; a line is written at most every ``interval_s`` seconds and once at
    the end. ``enabled=False`` shows nothing.
    """

    def __init__(
        self,
        label: str,
        unit: str = "images",
        *,
        enabled: bool = True,
        interval_s: float = 5.0,
        console: Any = None,
    ) -> None:
        self.label = label
        self.unit = unit
        self.enabled = enabled
        self.interval_s = float(interval_s)
        self.console = console
        self._bar: Any = None
        self._task: Any = None
        self._t0 = 0.0
        self._last_line = -float("inf")
        self._state: tuple[int, int, str] | None = None
        self._line_state: tuple[int, int, str] | None = None

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        if self.console is None:
            self.console = stderr_console()
        self._t0 = time.perf_counter()
        if self.console.is_terminal:
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
                TextColumn(self.label),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.__enter__()
        return self

    def _rate(self, done: int) -> tuple[float, str]:
        elapsed = time.perf_counter() - self._t0
        if done and elapsed > 0:
            return elapsed, f"{done / elapsed:.2f} {self.unit}/s"
        return elapsed, f"- {self.unit}/s"

    def __call__(self, done: int, total: int, info: str = "") -> None:
        if not self.enabled:
            return
        self._state = (done, total, info)
        elapsed, rate = self._rate(done)
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task(self.label, total=total, rate=rate, info=info)
            self._bar.update(self._task, completed=done, total=total, rate=rate, info=info)
            return
        if self.console is not None and elapsed - self._last_line >= self.interval_s:
            self._write_line()

    def _write_line(self) -> None:
        if self._state is None or self._state == self._line_state:
            return
        done, total, info = self._state
        elapsed, rate = self._rate(done)
        eta = ""
        if 0 < done < total:
            eta = f", ETA {_hms(elapsed / done * (total - done))}"
        pct = f" ({100.0 * done / total:.0f}%)" if total else ""
        extra = f", {info}" if info else ""
        self.console.print(
            f"{self.label}: {done}/{total} {self.unit}{pct}, {rate}, "
            f"elapsed {_hms(elapsed)}{eta}{extra}",
            highlight=False,
            soft_wrap=True,
        )
        self._last_line = elapsed
        self._line_state = self._state

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif self.enabled and self.console is not None:
            self._write_line()


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
