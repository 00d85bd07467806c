"""Where images come from: a folder, a list file, or an fsspec URL; and reading their bytes.

An :class:`ImageRef` names one input image by a stable ``image_id`` (its path relative to the
input root, POSIX separators) and says where its bytes are (a local path or an fsspec URL).
The id is what the tree store records and what a rerun uses to skip finished images, so it
must not depend on the machine: it never contains the absolute input root.

Three kinds of source are understood by :func:`list_images`:

* a **directory** (local path or fsspec URL such as ``"memory://corpus"`` or
  ``"s3://bucket/prefix"``): every file below it, recursively, whose extension is in
  ``extensions`` (case-insensitive), sorted by id; symbolic links to directories are not
  followed;
* a **list file** (any file whose extension is not an image extension): one path per line;
  blank lines and lines starting with ``#`` are skipped; relative entries are relative to the
  list file's folder and keep that relative path as their id; absolute entries (or URLs) get
  their path relative to the list file's folder when below it, else their path without the
  protocol and leading ``/``. Order is the file's; repeated entries are listed once;
* a **single image file**: one ref whose id is the file name.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..config import PreprocessConfig
from ..errors import InputSourceError, UnreadableImageError
from .decode import is_url

__all__ = ["ImageRef", "list_images", "read_bytes", "normalise_extensions"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class ImageRef:
    """One input image.

    Attributes
    ----------
    image_id : str
        Path relative to the input root, POSIX separators (``"dogs/001.jpg"``).
    path : str
        Where the bytes are: an absolute local path or an fsspec URL (``"memory://c/a.png"``).
    """

    image_id: str
    path: str


def normalise_extensions(extensions: Iterable[str]) -> frozenset[str]:
    """Lower-case, dot-prefixed extensions: ``["JPG", ".png"]`` -> ``{".jpg", ".png"}``."""
    if isinstance(extensions, str):
        extensions = (extensions,)
    out = set()
    for e in extensions:
        e = str(e).strip().lower()
        if not e:
            continue
        out.add(e if e.startswith(".") else "." + e)
    return frozenset(out)


def _has_ext(name: str, exts: frozenset[str]) -> bool:
    return posixpath.splitext(name)[1].lower() in exts


def list_images(
    source: str | os.PathLike[str],
    extensions: Iterable[str] = PreprocessConfig.extensions,
) -> list[ImageRef]:
    """List the images of a directory, list file or fsspec URL (rules in the module docstring).

    Parameters
    ----------
    source : str or os.PathLike
        Local directory / file, or a URL with a protocol (``"memory://x"``, ``"file:///x"``).
    extensions : iterable of str
        Image extensions taken from directories (default ``PreprocessConfig.extensions``).

    Returns
    -------
    list of ImageRef
        Deterministic order: sorted by id for directories, file order for list files.

    Raises
    ------
    InputSourceError
        If the source does not exist or cannot be listed, or a list file names two different
        files with the same id.
    """
    exts = normalise_extensions(extensions)
    if is_url(source):
        return _list_fsspec(str(source), exts)
    path = Path(os.fspath(source)).expanduser()
    try:
        if path.is_dir():
            return _list_local_dir(path.resolve(), exts)
        if path.is_file():
            path = path.resolve()
            if _has_ext(path.name, exts):
                return [ImageRef(path.name, str(path))]
            text = path.read_text(encoding="utf-8")
            return _from_list_text(text, str(path.parent), lambda p: p, local=True)
    except (OSError, ValueError) as exc:  # ValueError: a list file that is not UTF-8 text
        raise InputSourceError(f"cannot list input source {os.fspath(source)!r}: {exc}") from exc
    raise InputSourceError(
        f"input source {os.fspath(source)!r} does not exist; expected a directory of images, a "
        "text file with one image path per line, or an fsspec URL"
    )


def _list_local_dir(root: Path, exts: frozenset[str]) -> list[ImageRef]:
    refs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            if _has_ext(name, exts):
                image_id = name if rel_dir == "." else f"{rel_dir}/{name}"
                refs.append(ImageRef(image_id, os.path.join(dirpath, name)))
    refs.sort()
    return refs


def _list_fsspec(url: str, exts: frozenset[str]) -> list[ImageRef]:
    import fsspec.core

    try:
        fs, root = fsspec.core.url_to_fs(url)
        if fs.isdir(root):
            root = root.rstrip("/")
            refs = [
                ImageRef(posixpath.relpath(p, root), fs.unstrip_protocol(p))
                for p in fs.find(root)
                if _has_ext(p, exts)
            ]
            refs.sort()
            return refs
        if fs.isfile(root):
            if _has_ext(root, exts):
                return [ImageRef(posixpath.basename(root), fs.unstrip_protocol(root))]
            text = fs.cat_file(root).decode("utf-8")
            return _from_list_text(text, posixpath.dirname(root), fs.unstrip_protocol, local=False)
    except (OSError, ValueError, ImportError) as exc:
        raise InputSourceError(f"cannot list input source {url!r}: {exc}") from exc
    raise InputSourceError(f"input source {url!r} does not exist (no such directory or file)")


def _from_list_text(
    text: str, base_key: str, to_location: Callable[[str], str], *, local: bool
) -> list[ImageRef]:
    """Parse a list file's text.

    ``base_key`` is the list file's folder as a plain path (local absolute path, or the
    filesystem path without protocol); ``to_location`` turns such a path into the location
    stored in :attr:`ImageRef.path`.
    """
    import fsspec.core

    refs: list[ImageRef] = []
    seen: dict[str, str] = {}
    sep_base = base_key.replace(os.sep, "/").rstrip("/")
    for lineno, raw in enumerate(text.splitlines(), start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        if is_url(entry) or posixpath.isabs(entry) or (local and os.path.isabs(entry)):
            if is_url(entry):
                location, key = entry, fsspec.core.strip_protocol(entry)
            else:
                key = os.path.normpath(entry) if local else posixpath.normpath(entry)
                location = to_location(key)
            key = key.replace(os.sep, "/")
            rel = posixpath.relpath(key, sep_base) if key.startswith(sep_base + "/") else None
            image_id = rel if rel is not None else key.lstrip("/")
        else:
            image_id = posixpath.normpath(entry.replace("\\", "/"))
            joined = (
                os.path.normpath(os.path.join(base_key, image_id))
                if local
                else posixpath.normpath(posixpath.join(base_key, image_id))
            )
            location = to_location(joined)
        previous = seen.get(image_id)
        if previous is not None:
            if previous != location:
                raise InputSourceError(
                    f"list file line {lineno}: id {image_id!r} already names {previous!r}; "
                    f"cannot also name {location!r}"
                )
            logger.info("list file line %d repeats %r; listed once", lineno, entry)
            continue
        seen[image_id] = location
        refs.append(ImageRef(image_id, location))
    return refs


def read_bytes(ref: ImageRef | str | os.PathLike[str]) -> bytes:
    """Read the whole file behind ``ref`` (an :class:`ImageRef`, a local path or an fsspec URL).

    Raises :class:`~mis_pipeline.errors.UnreadableImageError` (never a raw ``OSError``).
    """
    location = ref.path if isinstance(ref, ImageRef) else os.fspath(ref)
    try:
        if is_url(location):
            import fsspec

            with fsspec.open(location, "rb") as fh:
                return fh.read()
        with open(location, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise UnreadableImageError("no such file", location) from exc
    except (OSError, ValueError) as exc:
        raise UnreadableImageError(f"cannot read file: {exc}", location) from exc
