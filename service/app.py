"""The FastAPI app factory.

``create_app(settings, store)`` builds a stateless API: every request reads and writes
the store (the database is the single source of truth), so any number of API processes
can serve one database. Tests inject a store; servers let the app open one from
``settings.db_url`` when it starts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from service.api.routes import catalog, health, reports, studies, trials, ui
from service.errors import install_error_handlers
from service.middleware import BodySizeLimit
from service.schemas import API_PREFIX
from service.settings import Settings
from studies.store import Store, open_store

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Submit hyperparameter studies that compare optimizers' robustness to the learning rate,
follow their progress, and read their trials and reports.

Authentication: `Authorization: Bearer <token>` with a token from
`vradam-hpo token create --name NAME`. Writes need the `write` scope; reads need a token
unless the server runs in local mode on 127.0.0.1. Every error has the body
`{"error": {"code", "message", "fields": [{"path", "message"}]}}`.

In a browser: `/ui` lists the studies with their progress, running trials and reports.
"""

# A complete, valid definition (seconds to run): the docs' and the fuzzer's example.
EXAMPLE_STUDY: dict[str, Any] = {
    "name": "quadratic-example",
    "tasks": [{"name": "quadratic", "budget": {"epochs": 2}}],
    "optimizers": [{"name": "adamw"}, {"name": "vradam"}],
    "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1.0, "log": True}},
    "sampler": {"name": "grid", "points": {"lr": 3}},
    "seeds": [0, 1],
}


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    """Build the API.

    Args:
        settings: Configuration (default: from ``VRADAM_LAB_*`` environment variables).
        store: The store to use. When ``None``, the app opens one from
            ``settings.db_url`` at startup (migrating it if ``settings.create_schema``)
            and closes it at shutdown; a store passed in is left open.

    Returns:
        The FastAPI application.
    """
    settings = settings or Settings()
    owns_store = store is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if owns_store:
            app.state.store = open_store(settings.db_url)
            if settings.create_schema:
                app.state.store.create_schema()
        try:
            yield
        finally:
            if owns_store:
                app.state.store.close()

    # Swagger UI (/docs) and ReDoc (/redoc) from fastapi-offline's bundled assets (under
    # /static-offline-docs), not from a CDN: the docs work without internet.
    app = FastAPIOffline(
        title="VRAdam Lab",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.state.settings = settings
    if store is not None:
        app.state.store = store
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router, include_in_schema=False)
    app.include_router(ui.router)  # /, /ui, /ui/studies/{id}: HTML, not in the schema
    for module in (studies, trials, reports, catalog, health):
        app.include_router(module.router, prefix=API_PREFIX)
    app.openapi = _openapi_with_spec(app)  # type: ignore[method-assign]
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vradam-lab")
    except PackageNotFoundError:
        return "0.0.0"


def _openapi_with_spec(app: FastAPI) -> Any:
    """Describe ``POST /v1/studies``'s body with the ``StudySpec`` JSON schema."""
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = default_openapi()
        from studies.spec import StudySpec

        spec_schema = StudySpec.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, sub in spec_schema.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components["StudySpec"] = spec_schema
        post = schema["paths"][f"{API_PREFIX}/studies"]["post"]
        post["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/StudySpec"},
                    "example": EXAMPLE_STUDY,
                }
            },
        }
        app.openapi_schema = schema
        return schema

    return openapi
