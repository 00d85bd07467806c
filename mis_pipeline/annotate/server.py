"""The annotation web server: one page and a small JSON API on Starlette, served by uvicorn.

API (every ``POST`` takes a JSON object and the header ``X-MIS-Session`` from ``/api/session``;
pixels are ``(row, col)`` of the decoded image; masks are row-major RLE,
:func:`mis_pipeline.annotate.rle.encode_rows`)::

    GET  /                               the page (static/index.html)
    GET  /static/app.js, /static/app.css its script and style (a fixed list; no file lookup)
    GET  /api/images                     image list: index, name, done, failed reason
    GET  /api/images/{index}/image       the decoded pixels as PNG (sent once, cacheable)
    POST /api/session                    -> {"session": id, ...settings}
    POST /api/open    {index}            reset the predictor on that image -> state
    POST /api/click   {index, row, col, positive} -> state (mask, clicks, server_ms)
    POST /api/undo    {index}            -> state;   POST /api/reset {index} -> state
    POST /api/save    {index}            write MASKS/<stem>.png, annotations.json, pairs.csv
    POST /api/hover   {index, row, col}  merge-tree region of a positive click there (tree only)

Safety: images are named by index only (the path converter admits digits, the static route a
fixed set of names), request bodies are capped (:class:`BodyLimitMiddleware`, 413), every
bad request gets a 4xx JSON ``{"error": message}`` and never a traceback, the ``Host`` header is
checked when serving on loopback (DNS-rebinding guard), and the page's Content-Security-Policy
allows nothing outside the server.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ImageError
from .images import ImageFolder
from .rle import encode_rows
from .saving import MaskStore
from .session import AnnotationSession, ImageNotOpenError, SessionPool, UnknownSessionError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..config import PipelineConfig

logger = logging.getLogger(__name__)

__all__ = ["AnnotateSettings", "Annotator", "create_app", "serve", "run_in_background", "is_loopback",
           "SESSION_HEADER", "BodyLimitMiddleware"]

SESSION_HEADER = "X-MIS-Session"
_STATIC = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class AnnotateSettings:
    """Settings of ``mis annotate`` (the defaults of its command-line flags).

    Attributes
    ----------
    host, port : str, int
        Where uvicorn listens; loopback by default.
    max_sessions : int
        Browser sessions kept (each owns a predictor); the least recently used is dropped.
    max_body_bytes : int
        Largest request body accepted (the API's bodies are a few dozen bytes).
    image_cache : int
        Decoded images kept in memory.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    max_sessions: int = 8
    max_body_bytes: int = 4096
    image_cache: int = 8

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if not 0 <= int(self.port) <= 65535:
            raise ConfigError("--port", self.port, "an integer in 0..65535")
        for name in ("max_sessions", "max_body_bytes", "image_cache"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(name, getattr(self, name), "an integer >= 1")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Pure ASGI middleware refusing request bodies over ``max_bytes`` (413) and request
    headers over ``max_header_bytes`` in total (431).

    Checks ``Content-Length`` first and counts the bytes actually received (chunked bodies).
    (uvicorn's h11 limit bounds headers that arrive slowly; headers that arrive in one read are
    only bounded here.)
    """

    def __init__(self, app: Any, max_bytes: int, max_header_bytes: int = 16 * 1024) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.max_header_bytes = int(max_header_bytes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header_bytes = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        header_bytes += sum(len(k) + len(v) for k, v in scope.get("headers", ()))
        if header_bytes > self.max_header_bytes:
            await _send_json(send, 431, {"error": f"request line and headers exceed {self.max_header_bytes} bytes"})
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _send_json(send, 400, {"error": "Content-Length is not an integer"})
                    return
                if length > self.max_bytes:
                    await _send_json(send, 413, {"error": f"request body of {length} bytes exceeds the limit of {self.max_bytes}"})
                    return
        received = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, {"error": f"request body exceeds the limit of {self.max_bytes} bytes"})


async def _send_json(send: Any, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _static_text(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class Annotator:
    """Everything the server holds: the images, the saved masks and the browser sessions.

    Parameters
    ----------
    images_dir, out_dir : path
        Images to annotate; where masks are saved (created if missing).
    predictor : str
        Name in :data:`mis_pipeline.evaluate.predictors.PREDICTOR_REGISTRY`.
    cfg : PipelineConfig, optional
        Predictor settings (``evaluate.*``), threshold and click budget; defaults when None.
    settings : AnnotateSettings
    """

    def __init__(
        self,
        images_dir: str | Path,
        out_dir: str | Path,
        predictor: str = "tree",
        cfg: PipelineConfig | None = None,
        settings: AnnotateSettings | None = None,
    ) -> None:
        from ..config import PipelineConfig
        from ..evaluate.predictors import make_predictor, predictor_class

        self.cfg = cfg if cfg is not None else PipelineConfig()
        self.settings = settings if settings is not None else AnnotateSettings()
        self.predictor_name = predictor
        cls = predictor_class(predictor)  # fails now (ConfigError) on an unknown name
        if getattr(cls, "uses_ground_truth", False):
            from ..errors import ConfigError

            raise ConfigError("--predictor", predictor, "a click-based predictor (it reads the target, which "
                              "annotation does not have)")
        self.images = ImageFolder(images_dir, self.cfg.preprocess.extensions, exclude=out_dir,
                                  max_pixels=self.cfg.io.max_pixels, cache_size=self.settings.image_cache)
        self.store = MaskStore(self.images, out_dir)
        self.token = secrets.token_hex(4)  # in image URLs: a restart never serves a stale cached image
        self._make = lambda: make_predictor(predictor, self.cfg)
        self.sessions = SessionPool(self._new_session, self.settings.max_sessions)
        self._warm_lock = threading.Lock()

    def _new_session(self) -> AnnotationSession:
        return AnnotationSession(self._make(), self.images, self.store, self.cfg.evaluate.pred_threshold)

    def warmup(self) -> None:
        """Compile the predictor's kernels once (the first click is then as fast as the rest)."""
        with self._warm_lock:
            self._make().warmup()

    def image_list(self) -> list[dict[str, Any]]:
        out = []
        for e in self.images.entries:
            shape = self.images.shape(e.index)
            out.append({
                "index": e.index,
                "name": e.image_id,
                "stem": e.stem,
                "done": self.store.is_saved(e.index),
                "failed": self.images.failure(e.index),
                "size": list(shape) if shape is not None else None,
            })
        return out

    def state(self, session: AnnotationSession, mask: Any, seconds: float) -> dict[str, Any]:
        idx = session.index
        return {
            "index": idx,
            "status": "ok",
            "size": list(session.shape),
            "clicks": [[c.row, c.col, c.is_positive] for c in session.clicks],
            "n_clicks": len(session.clicks),
            "budget": self.cfg.evaluate.max_clicks,
            "mask": encode_rows(mask),
            "server_ms": round(seconds * 1000.0, 3),
            "done": idx is not None and self.store.is_saved(idx),
        }


# --------------------------------------------------------------------------- request helpers
async def _body(request: Any) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise _BadRequest(415, f"Content-Type must be application/json, got {ctype!r}")
    raw = await request.body()
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequest(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BadRequest(400, f"body must be a JSON object, got {type(data).__name__}")
    return data


def _int(data: dict[str, Any], key: str, lo: int = 0, hi: int | None = None) -> int:
    v = data.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _BadRequest(400, f"field {key!r} must be an integer, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        # an image index that does not exist is "not found"; other fields are malformed
        raise _BadRequest(404 if key == "index" else 400,
                          f"field {key!r} = {v} is out of range {lo}..{hi if hi is not None else ''}")
    return v


def _bool(data: dict[str, Any], key: str) -> bool:
    v = data.get(key)
    if not isinstance(v, bool):
        raise _BadRequest(400, f"field {key!r} must be true or false, got {v!r}")
    return v


def create_app(annotator: Annotator, allowed_hosts: list[str] | None = None) -> Starlette:
    """The Starlette application of ``annotator``.

    ``allowed_hosts``: accepted ``Host`` header names (None: any; :func:`serve` passes the
    loopback names when listening on loopback).
    """
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    a = annotator
    n_images = len(a.images)

    def session_of(request: Request) -> AnnotationSession:
        sid = request.headers.get(SESSION_HEADER, "")
        if not sid or len(sid) > 64:
            raise _BadRequest(400, f"missing or malformed {SESSION_HEADER} header (POST /api/session gives one)")
        try:
            return a.sessions.get(sid)
        except UnknownSessionError:
            raise _BadRequest(410, "unknown or expired session; reload the page") from None

    def headers(extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        h.update(extra or {})
        return h

    async def page(request: Request) -> Response:
        return Response(_static_text("index.html"), media_type="text/html; charset=utf-8",
                        headers=headers({"Content-Security-Policy": _CSP}))

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            raise _BadRequest(404, "no such static file")
        return Response(_static_text(name), media_type=_STATIC[name], headers=headers())

    async def images(request: Request) -> Response:
        return JSONResponse({"images": a.image_list(), "token": a.token}, headers=headers())

    async def image(request: Request) -> Response:
        index = request.path_params["index"]
        if index >= n_images:
            raise _BadRequest(404, f"image index {index} out of range 0..{n_images - 1}")
        try:
            data = await run_in_threadpool(a.images.encoded, index)
        except ImageError as exc:
            raise _BadRequest(422, f"image {index} cannot be decoded: {exc.detail}") from None
        return Response(data, media_type="image/png",
                        headers=headers({"Cache-Control": "private, max-age=86400, immutable"}))

    async def new_session(request: Request) -> Response:
        await _body(request)
        sid, session = await run_in_threadpool(a.sessions.create)
        return JSONResponse({
            "session": sid, "predictor": a.predictor_name, "hover": session.can_hover,
            "budget": a.cfg.evaluate.max_clicks, "threshold": a.cfg.evaluate.pred_threshold,
            "n_images": n_images,
        }, headers=headers())

    def locked(fn):  # type: ignore[no-untyped-def]
        """Run ``fn(session, data)`` in the thread pool holding the session's lock."""
        async def endpoint(request: Request) -> Response:
            data = await _body(request)
            session = session_of(request)

            def run() -> dict[str, Any]:
                with session.lock:
                    return fn(session, data)

            return JSONResponse(await run_in_threadpool(run), headers=headers())
        return endpoint

    def _open(session: AnnotationSession, data: dict[str, Any]) -> dict[str, Any]:
        index = _int(data, "index", 0, n_images - 1)
        try:
            r = session.open(index)
        except ImageError as exc:
            session.index = None
            return {"index": index, "status": "failed", "error": f"image cannot be decoded: {exc.detail}"}
        return a.state(session, r.mask, r.seconds)

    def _opened(session: AnnotationSession, data: dict[str, Any]) -> None:
        session.require(_int(data, "index", 0, n_images - 1))

    def _pixel(session: AnnotationSession, data: dict[str, Any]) -> tuple[int, int]:
        h, w = session.shape
        return _int(data, "row", 0, h - 1), _int(data, "col", 0, w - 1)

    def _click(session: AnnotationSession, data: dict[str, Any]) -> dict[str, Any]:
        _opened(session, data)
        row, col = _pixel(session, data)
        r = session.click(row, col, _bool(data, "positive"))
        return a.state(session, r.mask, r.seconds)

    def _undo(session: AnnotationSession, data: dict[str, Any]) -> dict[str, Any]:
        _opened(session, data)
        r = session.undo()
        return a.state(session, r.mask, r.seconds)

    def _reset(session: AnnotationSession, data: dict[str, Any]) -> dict[str, Any]:
        _opened(session, data)
        r = session.reset()
        return a.state(session, r.mask, r.seconds)

    def _save(session: AnnotationSession, data: dict[str, Any]) -> dict[str, Any]:
        _opened(session, data)
        session.save()
        out = a.state(session, session.mask(), 0.0)
        out["saved_to"] = a.store.mask_path(a.images.entry(session.index)).name  # type: ignore[arg-type]
        return out

    def _hover(session: AnnotationSession, data: dict[str, Any]) -> dict[str, Any]:
        _opened(session, data)
        row, col = _pixel(session, data)
        if not session.can_hover:
            raise _BadRequest(409, f"the {a.predictor_name!r} predictor has no merge tree to preview")
        return {"index": session.index, "row": row, "col": col, "mask": encode_rows(session.hover(row, col))}

    async def on_bad_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _BadRequest)
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers())

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=headers())

    async def on_value(request: Request, exc: Exception) -> Response:
        # ImageNotOpenError and pixel/shape checks from the session
        status = 409 if isinstance(exc, ImageNotOpenError) else 400
        return JSONResponse({"error": str(exc)}, status_code=status, headers=headers())

    async def on_error(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/api/images", images, methods=["GET"]),
        Route("/api/images/{index:int}/image", image, methods=["GET"]),
        Route("/api/session", new_session, methods=["POST"]),
        Route("/api/open", locked(_open), methods=["POST"]),
        Route("/api/click", locked(_click), methods=["POST"]),
        Route("/api/undo", locked(_undo), methods=["POST"]),
        Route("/api/reset", locked(_reset), methods=["POST"]),
        Route("/api/save", locked(_save), methods=["POST"]),
        Route("/api/hover", locked(_hover), methods=["POST"]),
    ]
    middleware = [Middleware(BodyLimitMiddleware, max_bytes=a.settings.max_body_bytes)]
    if allowed_hosts is not None:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            _BadRequest: on_bad_request,
            HTTPException: on_http,
            ValueError: on_value,
            Exception: on_error,
        },
    )
    app.state.annotator = a
    return app


def _uvicorn_server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        limit_concurrency=64,  # bounded work in flight
        # h11 (not httptools) so that the request line + headers are bounded too
        http="h11", h11_max_incomplete_event_size=16 * 1024,
        timeout_keep_alive=5,
    )
    return uvicorn.Server(config)


def allowed_hosts_for(host: str) -> list[str] | None:
    """Host-header names accepted when listening on ``host`` (loopback only; None: any)."""
    if is_loopback(host) and ":" not in host:
        return sorted({*_LOOPBACK_NAMES, host})
    return None


def serve(annotator: Annotator, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve until interrupted. Listening beyond loopback logs a warning (anyone on the network
    can then read the images and write masks)."""
    if not is_loopback(host):
        logger.warning("listening on %s: the images and the mask folder are reachable from the network", host)
    app = create_app(annotator, allowed_hosts_for(host))
    _uvicorn_server(app, host, port).run()


def run_in_background(annotator: Annotator, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, threading.Thread, str]:
    """Start the server in a daemon thread (tests, benchmarks); ``port=0`` picks a free port.

    Returns ``(server, thread, base_url)``; stop with ``server.should_exit = True; thread.join()``.
    """
    import time

    app = create_app(annotator, allowed_hosts_for(host))
    server = _uvicorn_server(app, host, port)
    thread = threading.Thread(target=server.run, name="mis-annotate", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the annotation server did not start on {host}:{port}")
        time.sleep(0.02)
    sock = server.servers[0].sockets[0]
    bound_port = sock.getsockname()[1]
    return server, thread, f"http://{host}:{bound_port}"
