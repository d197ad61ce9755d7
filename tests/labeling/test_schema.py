"""The OpenAPI schema: every endpoint is in it, with its error answers, and it has no warnings."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command

from labeling.api import urls as api_urls


@pytest.mark.django_db
class SchemaTests:
    def test_it_generates_without_warnings_and_documents_every_endpoints_errors(self, tmp_path):
        target = tmp_path / "schema.yml"
        # --fail-on-warn turns drf-spectacular's warnings (e.g. clashing component names) into
        # a failure; --validate checks the result against the OpenAPI specification.
        call_command(
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(target),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
        schema = yaml.safe_load(target.read_text())
        documented = set(schema["paths"])
        expected = {
            "/api/v1/" + str(p.pattern).replace("<int:", "{").replace(">", "}")
            for p in api_urls.urlpatterns
            if p.name not in ("schema", "docs")
        }
        assert expected <= documented, expected - documented
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                codes = {int(code) for code in operation["responses"]}
                assert any(400 <= c < 500 for c in codes), f"{method} {path}: no 4xx documented"
                if path != "/api/v1/auth/token/":
                    assert {401, 403} <= codes, f"{method} {path}"
