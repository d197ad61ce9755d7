"""Property-based API test generated from our OpenAPI schema (schemathesis).

Every operation is called with generated inputs, as an annotator and as staff, and every answer
must be in the schema: no 5xx, a documented status, a documented content type, a body that
matches its schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token

from tests.conftest import make_clips, make_user

APP = WSGIHandler()
# Loaded once, at collection: generating the schema reads no database.
SCHEMA = schemathesis.openapi.from_wsgi("/api/v1/schema/", APP)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Calls go straight to the WSGI handler, which closes the database connection at the end
    of each request; that would close the test's transaction. Django's test client does the same
    as this."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def annotator_token(campaign, alice):
    make_clips(campaign, 3)
    return Token.objects.create(user=alice).key


@pytest.fixture
def staff_token(campaign):
    make_clips(campaign, 3)
    return Token.objects.create(user=make_user("admin", staff=True)).key


GENERATION = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.django_db
@SCHEMA.parametrize()
@GENERATION
def test_every_answer_to_an_annotator_is_in_the_schema(case, annotator_token):
    case.call_and_validate(headers={"Authorization": f"Token {annotator_token}"}, checks=CHECKS)


@pytest.mark.django_db
@SCHEMA.parametrize()
@GENERATION
def test_every_answer_to_staff_is_in_the_schema(case, staff_token):
    case.call_and_validate(headers={"Authorization": f"Token {staff_token}"}, checks=CHECKS)
