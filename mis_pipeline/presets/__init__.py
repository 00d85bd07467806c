"""Configuration presets shipped with the package: each ``<name>.yaml`` here is one preset.

A preset is a YAML file of overrides only (defaults live in :mod:`mis_pipeline.config`), used
as ``--config NAME`` by every ``mis`` subcommand and by ``load_config("NAME")`` in
:mod:`mis_pipeline.cli._common`. The first comment line of a file is its one-line
description (``mis config --list``). Adding a preset is adding a file: nothing else lists them.
"""
