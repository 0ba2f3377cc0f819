"""The dashboard at ``/`` and the API docs at ``/docs`` come from the package, never a
CDN; with a token, only those static files are served without it."""

from __future__ import annotations

import re

from daemon_helpers import local_client

TOKEN = "dash-token-" + "k" * 24


def test_dashboard_and_docs_are_served_offline(make_app):
    with local_client(make_app()) as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
        assert "/static/dashboard.js" in assets and "/static/chart.js" in assets
        docs = c.get("/docs")
        assert docs.status_code == 200
        for html in (page.text, docs.text):
            assert not re.search(r'(?:src|href)="(?:https?:)?//', html), "a page loads from the network"
        for url in assets + re.findall(r"""(?:src|href|url)\s*[=:]\s*['"](/[^'"]+)['"]""", docs.text):
            if url != "/openapi.json":
                assert c.get(url).status_code == 200, url
        assert "swagger-ui-bundle.js" in docs.text
        assert c.get("/redoc").status_code == 404  # FastAPI's ReDoc page loads from a CDN


def test_with_a_token_only_the_static_dashboard_is_public(make_app):
    with local_client(make_app(token=TOKEN)) as c:
        assert c.get("/").status_code == 200
        assert c.get("/static/dashboard.js").status_code == 200
        for path in ("/v1/adaptations", "/v1/power", "/v1/datasets", "/v1/models", "/docs"):
            assert c.get(path).status_code == 401, path
        assert c.post("/static/dashboard.js").status_code == 401
        ok = c.get("/v1/adaptations", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
