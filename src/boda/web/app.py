"""The FastAPI app: parse the request, call one service, return its JSON. Read-only.

One server process opens one registry client and a small pool of ledger connections, on first
use, and shares them across requests (`resources`); they close when the server stops (the lifespan).
Errors keep the CLI's exit code in the body and map it to an HTTP status. Served by `boda serve`,
the app answers only the Host names it is served as (`hosts`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from boda import __version__
from boda.config import Config
from boda.errors import (
    EXIT_CONFLICT,
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    BodaError,
)
from boda.services import events as events_service
from boda.services import status as status_service
from boda.services import verify as verify_service
from boda.services.context import Context
from boda.services.expiry import plan as expiry_plan
from boda.services.history import PAGE_SIZE, entry_json, stream_history
from boda.services.policy_eval import parse_now
from boda.web.answers import MAX_AGE_S, Answers
from boda.web.hosts import HostCheck, HostPolicy
from boda.web.resources import POOL_SIZE, Resources

T = TypeVar("T")

HTTP_STATUS = {
    EXIT_USAGE: 400,
    EXIT_REFUSED: 403,
    EXIT_NOT_FOUND: 404,
    EXIT_CONFLICT: 409,
    EXIT_UNAVAILABLE: 503,
}
_EXIT_OF_HTTP = {status: code for code, status in HTTP_STATUS.items()}


def error_body(message: str, exit_code: int) -> dict[str, Any]:
    """The body of every error answer: one line and the CLI's exit code."""
    return {"error": message.splitlines()[0] if message else "error", "exit_code": exit_code}


def _dumps(data: Any) -> bytes:
    """Compact JSON: orjson when installed (the `fast` extra), else the standard library."""
    try:
        import orjson
    except ImportError:
        return json.dumps(data, separators=(",", ":")).encode()
    return orjson.dumps(data)


def json_answer(data: Any) -> Response:
    """A JSON answer, serialised once (FastAPI would first copy the document with jsonable_encoder)."""
    return Response(_dumps(data), media_type="application/json")


def create_app(
    config: Config,
    *,
    hosts: HostPolicy | None = None,
    pool_size: int = POOL_SIZE,
    answer_age: float = MAX_AGE_S,
) -> FastAPI:
    """The API and dashboard over the project configured by `config`.

    With `hosts`, requests for any other Host are refused (400); without, every Host is answered
    (for an embedding server that checks Host itself, and for tests). Answers computed from the
    ledger alone are reused while the ledger is unchanged, for at most `answer_age` seconds (0:
    never reused).
    """
    resources = Resources(config, pool_size=pool_size)
    answers = Answers(max_age=answer_age)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # As many request threads as ledger connections: more would only queue on the pool while
        # contending for the interpreter (measured: the 95th percentile grows with idle threads).
        anyio.to_thread.current_default_thread_limiter().total_tokens = pool_size
        try:
            yield
        finally:
            resources.close()

    app = FastAPI(title="boda", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.resources = resources
    app.state.answers = answers
    if hosts is not None:
        app.add_middleware(HostCheck, policy=hosts)
    dashboard = (files("boda.web") / "static" / "dashboard.html").read_text(encoding="utf-8")

    def call(service: Callable[[Context], T]) -> T:
        with resources.context() as ctx:
            return service(ctx)

    def ledger_answer(key: tuple[str, ...], service: Callable[[Context], Any]) -> Response:
        """The JSON answer of a service that reads only the ledger, reused while it is unchanged."""
        with resources.context() as ctx:
            body = answers.get(key, ctx.ledger, lambda: _dumps(service(ctx)))
        return Response(body, media_type="application/json")

    @app.exception_handler(BodaError)
    async def boda_error(request: Request, exc: BodaError) -> JSONResponse:
        status = HTTP_STATUS.get(exc.exit_code, 500)
        return JSONResponse(error_body(exc.diagnostics(), exc.exit_code), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return JSONResponse(error_body(problems, EXIT_USAGE), status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = f"{request.method} {request.url.path}: {exc.detail}"
        return JSONResponse(
            error_body(message, _EXIT_OF_HTTP.get(exc.status_code, EXIT_FAILURE)),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        """The dashboard page."""
        return HTMLResponse(dashboard)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers (touches neither registry nor ledger)."""
        return {"ok": True}

    @app.get("/api/environments")
    def environments() -> dict[str, Any]:
        """The configured environments in order, with upstream and required evidence."""
        return {
            "environments": [
                {"name": e.name, "after": e.after, "requires": list(e.requires)} for e in config.environments
            ]
        }

    @app.get("/api/apps")
    def apps() -> Response:
        """Every app the ledger knows."""
        return ledger_answer(("apps",), lambda ctx: {"apps": ctx.ledger.apps()})

    @app.get("/api/whereis")
    def whereis(app: str | None = None, commit: str | None = None, digest: str | None = None) -> Response:
        """Which environments run a build (by commit or digest) now and which ran it before."""
        return json_answer(
            call(lambda ctx: status_service.whereis(ctx, app, commit=commit, digest=digest).to_json())
        )

    @app.get("/api/apps/{app:path}/status")
    def status(
        app: str, previous: Annotated[int, Query(ge=0, le=100000)] = 10, ledger_only: bool = False
    ) -> Response:
        """What runs in each environment now (promoted, in the registry, in the runtimes), since
        when, by whom, and what ran before. Reused while the ledger is unchanged, for at most the
        answer age (what the registry and runtimes say may lag that much)."""
        return ledger_answer(
            ("status", app, str(previous), str(ledger_only)),
            lambda ctx: status_service.status(ctx, app, previous=previous, live=not ledger_only).to_json(),
        )

    @app.get("/api/overview")
    def overview() -> Response:
        """Every app × environment: state, current digest, what runs, drift (the dashboard's matrix)."""
        return ledger_answer(("overview",), lambda ctx: status_service.overview(ctx).to_json())

    @app.get("/api/events")
    def events(app: str | None = None, limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> Response:
        """The event log (of `app`), newest first: builds, promotions, evidence, pins, expiries, repairs."""
        return ledger_answer(
            ("events", app or "", str(limit)),
            lambda ctx: events_service.events(ctx, app, limit=limit).to_json(),
        )

    @app.get("/api/apps/{app:path}/history")
    def history(
        app: str, env: str | None = None, limit: Annotated[int | None, Query(ge=1)] = None
    ) -> Response:
        """Every promotion and rollback, newest first (the newest `limit` when given), streamed as
        the ledger is read a page at a time; the app and environment are checked first."""
        borrowed = resources.context()
        ctx = borrowed.__enter__()
        try:
            found = stream_history(ctx, app, env, limit=limit)
        except BaseException as exc:
            borrowed.__exit__(type(exc), exc, exc.__traceback__)
            raise

        def body() -> Iterator[bytes]:
            try:
                yield b'{"app":' + _dumps(found.app) + b',"entries":['
                separator = b""
                batch: list[bytes] = []
                for promotion in found.entries:
                    batch.append(_dumps(entry_json(promotion)))
                    if len(batch) == PAGE_SIZE:
                        yield separator + b",".join(batch)
                        separator, batch = b",", []
                if batch:
                    yield separator + b",".join(batch)
                yield b"]}"
            finally:
                borrowed.__exit__(None, None, None)

        return StreamingResponse(body(), media_type="application/json")

    @app.get("/api/apps/{app:path}/verify")
    def verify(app: str) -> Response:
        """Registry against ledger; drift is an answer (`ok: false`), not an error."""
        return json_answer(call(lambda ctx: verify_service.verify(ctx, app).to_json()))

    @app.get("/api/apps/{app:path}/gc/plan")
    def gc_plan(app: str, now: str | None = None) -> Response:
        """The expiry plan with the configured policy; never applied over HTTP."""
        when = parse_now(now) if now else None
        return json_answer(call(lambda ctx: expiry_plan.plan(ctx, app, now=when).to_json()))

    return app
