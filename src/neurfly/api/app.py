"""The FastAPI application: REST API under ``/api/v1``, the dashboard under ``/dashboard/``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import OperationalError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import neurfly
from neurfly.api.access import Access, access, reject_unknown_query
from neurfly.api.context import ApiContext, ApiSettings
from neurfly.api.limits import BodySizeLimit
from neurfly.api.routes import ERROR_RESPONSES
from neurfly.api.routes import accounts as accounts_routes
from neurfly.api.routes import alerts as alerts_routes
from neurfly.api.routes import artifacts as artifacts_routes
from neurfly.api.routes import cluster as cluster_routes
from neurfly.api.routes import costs as costs_routes
from neurfly.api.routes import data as data_routes
from neurfly.api.routes import failures as failures_routes
from neurfly.api.routes import grants as grants_routes
from neurfly.api.routes import searches as searches_routes
from neurfly.api.supervisor import ControllerSupervisor
from neurfly.core.cluster import ClusterConfig
from neurfly.store import Store

_logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# The dashboard loads only files of this server; nothing from other hosts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def create_app(
    store: Store,
    cluster: ClusterConfig,
    settings: ApiSettings | None = None,
    supervisor: ControllerSupervisor | None = None,
) -> FastAPI:
    """Build the application over ``store``.

    Args:
        store: An opened (migrated) store.
        cluster: The cluster specs are validated against and the cluster views show.
        settings: Body size limit and whether to serve the dashboard.
        supervisor: Controller to start and stop with the application; ``None`` for an API-only process.
    """
    settings = settings or ApiSettings()
    ctx = ApiContext(store, cluster, settings, supervisor)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if supervisor is not None:
            supervisor.start()
        try:
            yield
        finally:
            if supervisor is not None:
                supervisor.stop()

    app = FastAPI(
        title="NeurFly",
        version=neurfly.__version__,
        summary="AutoML searches on shared compute: searches, trials, cluster, alerts.",
        lifespan=lifespan,
        # FastAPI's /docs and /redoc pages load their scripts from a CDN; the server loads nothing from other hosts.
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = ctx
    routers = (
        searches_routes.router, accounts_routes.router, cluster_routes.router, costs_routes.router, data_routes.router,
        grants_routes.router, artifacts_routes.router, alerts_routes.router, failures_routes.router,
    )
    for router in routers:
        app.include_router(router, prefix=API_PREFIX, responses=ERROR_RESPONSES, dependencies=[Depends(reject_unknown_query)])
    _add_public_routes(app)
    _add_error_handlers(app)
    if settings.dashboard:
        directory = resources.files("neurfly.dashboard") / "static"
        app.mount("/dashboard", StaticFiles(directory=str(directory), html=True), name="dashboard")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    return app


def _add_public_routes(app: FastAPI) -> None:
    @app.get("/healthz", openapi_extra=access(Access.PUBLIC), tags=["server"])
    def healthz() -> dict[str, str]:
        """Liveness probe; needs no token."""
        return {"status": "ok"}

    @app.get("/", include_in_schema=False, openapi_extra=access(Access.PUBLIC))
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError) -> JSONResponse:
        # A locked SQLite file or a dropped connection: the request changed nothing and may be retried.
        _logger.warning("%s %s failed on the database: %s", request.method, request.url.path, exc.orig)
        return JSONResponse({"detail": "the database is busy or unreachable; retry in a few seconds"}, status_code=503, headers={"Retry-After": "5"})


class SecurityHeaders:
    """Adds a content security policy and no-sniff headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
