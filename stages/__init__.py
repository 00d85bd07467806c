"""Thin pipeline-stage entry points, runnable as ``python -m stages.<name>`` and as Ray job scripts."""
