"""Under /api/ every error is JSON with a 4xx status, whatever the input; pages keep HTML."""

import pytest
from rest_framework.test import APIClient

from tests.labeling.test_api import client_for

DEEP = "[" * 1000 + "]" * 1000


@pytest.mark.django_db
class ApiErrorTests:
    @pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/tasks/next/"])
    def test_it_answers_400_to_json_nested_1000_levels_deep(self, alice, path):
        client = client_for(alice)
        r = client.post(path, DEEP, content_type="application/json")
        assert r.status_code == 400
        assert "nested too deeply" in r.json()["detail"]

    def test_it_answers_413_in_json_to_a_body_over_the_upload_limit(self, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        body = '{"username": "' + "x" * 5000 + '", "password": "p"}'
        r = APIClient().post("/api/v1/auth/token/", body, content_type="application/json")
        assert r.status_code == 413
        assert r["Content-Type"] == "application/json"
        assert "1000 bytes" in r.json()["detail"]

    def test_it_answers_a_50_mb_body_in_json(self):
        body = b'{"username": "' + b"x" * (50 * 1024 * 1024) + b'"}'
        r = APIClient().post("/api/v1/auth/token/", body, content_type="application/json")
        assert r.status_code == 413 and r.json()["detail"]

    @pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v2/tasks/next/", "/api/"])
    def test_it_answers_json_404_for_an_unmatched_api_url(self, path):
        r = APIClient().get(path)
        assert r.status_code == 404
        assert r["Content-Type"] == "application/json"
        assert path in r.json()["detail"]

    def test_a_page_404_stays_html(self, client):
        r = client.get("/no-such-page/")
        assert r.status_code == 404 and r["Content-Type"].startswith("text/html")

    def test_api_answers_are_never_stored_by_a_cache(self, campaign, alice):
        r = client_for(alice).post("/api/v1/tasks/next/", format="json")
        assert "no-store" in r["Cache-Control"] and "private" in r["Cache-Control"]
        assert "no-store" in APIClient().get("/api/v1/nope/")["Cache-Control"]

    def test_server_errors_under_api_are_json(self, rf):
        from annotation_site.errors import server_error

        r = server_error(rf.get("/api/v1/tasks/next/"))
        assert r.status_code == 500 and b'"detail"' in r.content


@pytest.mark.django_db
class OutOfRangeIdTests:
    def test_an_id_past_the_databases_integers_is_404_not_500(self, campaign, alice, client):
        huge = 2**70
        r = client_for(alice).post(
            f"/api/v1/assignments/{huge}/submit/", {"label": "happy"}, format="json"
        )
        assert r.status_code == 404 and r.json()["detail"]
        assert client_for(alice).post(f"/api/v1/assignments/{huge}/release/").status_code == 404

    def test_a_page_with_such_an_id_is_404_too(self, client, admin_user):
        from tests.conftest import PASSWORD

        assert client.login(username="admin", password=PASSWORD)
        assert client.get(f"/staff/campaigns/{2**70}/agreement/").status_code == 404
