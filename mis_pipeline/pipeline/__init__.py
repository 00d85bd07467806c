"""The corpus preprocessing run: sources -> decode -> features -> merge -> tree store.

:func:`preprocess` drives it with the in-process executor (``preprocess.executor = "local"``)
or on Ray (``"ray"``: Ray tasks, or Ray Data with GPU feature actors; see :mod:`.ray_exec`);
both run the stage classes of :mod:`.stages`.
"""

from .run import EXIT_OK, EXIT_WITH_FAILURES, PreprocessInterrupted, PreprocessResult, preprocess

__all__ = ["preprocess", "PreprocessResult", "PreprocessInterrupted", "EXIT_OK", "EXIT_WITH_FAILURES"]
