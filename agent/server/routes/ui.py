"""The dashboard at ``/`` and the API docs at ``/docs``, served from files in the
package: nothing is fetched from a CDN, so both work on an offline board."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent.parent / "static"
SWAGGER_PREFIX = "/static/swagger-ui"

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html",
                        headers={"Cache-Control": "no-cache"})


@router.get("/docs")
def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="halo-agent API",
                               swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon-32x32.png")


def install(app: FastAPI) -> None:
    """Add the dashboard, the offline docs and their static files to ``app`` (built
    with ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not served)."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(SWAGGER_PREFIX, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.include_router(router)
