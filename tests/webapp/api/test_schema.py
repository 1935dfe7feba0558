"""The OpenAPI schema generates without warnings and the docs page is served."""

from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_schema_generates_cleanly(tmp_path, capsys):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    text = out.read_text()
    for path in (
        "/api/v1/datasets:",
        "/api/v1/jobs/{job_id}/cancel:",
        "/api/v1/recommend:",
        "/api/v1/versions/{version_id}/activate:",
        "/api/v1/jobs/retrain:",
        "/api/v1/jobs/{job_id}/curve:",
        "/api/v1/jobs/compare:",
    ):
        assert path in text


def test_schema_and_docs_pages(api):
    assert api.get("/api/v1/schema").status_code == 200
    docs = api.get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()
    page = docs.content.decode()
    assert "cdn." not in page and "unpkg" not in page  # Swagger UI is served from our static files
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page


def test_healthz(client):
    assert client.get("/healthz").json()["status"] == "ok"
