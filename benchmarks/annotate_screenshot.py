"""Regenerate ``docs/annotate.png``, the README's screenshot of the ``mis annotate`` page.

The screenshot is the one the browser test takes (``tests/annotate/test_browser.py``: Debian's
Chromium driven by Playwright on three GrabCut images, after real clicks and a hover), so the
picture always shows the page as tested, never a hand-made one. This script runs that test
with ``MIS_ANNOTATE_SCREENSHOT`` pointing at the output file.

Run from the project root::

    .venv/bin/python benchmarks/annotate_screenshot.py [--out docs/annotate.png]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "annotate.png")
    args = ap.parse_args()
    out = args.out.resolve()
    env = {**os.environ, "MIS_ANNOTATE_SCREENSHOT": str(out)}
    rc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/annotate/test_browser.py"],
        cwd=ROOT, env=env,
    ).returncode
    if rc != 0:
        print("the browser test failed; no screenshot written", file=sys.stderr)
        return rc
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
