"""``mis annotate``: click-to-segment annotation of a folder of images in the browser.

The server (:mod:`.server`, Starlette + uvicorn) keeps one predictor per browser session
(:mod:`.session`), answers each click with the predictor of the evaluation protocol
(:func:`mis_pipeline.evaluate.predictors.make_predictor`) and saves masks as PNGs plus one
COCO file and a ``pairs.csv`` (:mod:`.saving`). The page (``static/``) is plain HTML, CSS and
JavaScript with no build step and nothing loaded from the network.

Public API
----------
:class:`Annotator`            images + saved masks + sessions of one server
:func:`create_app`            the Starlette application of an :class:`Annotator`
:func:`serve`                 run it with uvicorn (what ``mis annotate`` calls)
:func:`run_in_background`     run it in a thread on a free port (tests, benchmarks)
:func:`hover_region`          the merge-tree region a positive click would select
:func:`coco_rle`              COCO compressed RLE of a mask

Importing this package imports neither Starlette nor uvicorn; they load when an app is built.
"""

from .hover import hover_leaf_labels, hover_region, supports_hover
from .images import ImageEntry, ImageFolder, decode_rgb
from .rle import coco_rle, coco_rle_decode, decode_rows, encode_rows
from .saving import MaskStore
from .server import AnnotateSettings, Annotator, create_app, is_loopback, run_in_background, serve
from .session import AnnotationSession, SessionPool

__all__ = [
    "AnnotateSettings",
    "Annotator",
    "AnnotationSession",
    "SessionPool",
    "ImageEntry",
    "ImageFolder",
    "MaskStore",
    "create_app",
    "serve",
    "run_in_background",
    "is_loopback",
    "hover_region",
    "hover_leaf_labels",
    "supports_hover",
    "decode_rgb",
    "coco_rle",
    "coco_rle_decode",
    "encode_rows",
    "decode_rows",
]
