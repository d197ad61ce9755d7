"""The open-lease cap counts what the labelling page legitimately holds (issue 20, point 1)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from labeling.models import Assignment
from tests.conftest import PASSWORD, make_clips


def _next(client: Client, skip: list[int]):
    return client.post("/api/v1/tasks/next/", {"skip": skip}, content_type="application/json")


@pytest.mark.django_db
class DefaultOpenLeaseCapTests:
    def test_the_page_s_four_clips_fit_and_a_hoarding_script_is_stopped_at_the_fifth(
        self, campaign, alice
    ):
        make_clips(campaign, 10)
        client = Client()
        assert client.login(username="alice", password=PASSWORD)
        # what the page holds at a fluent pace: the label being saved, the label in its undo
        # window, the clip on screen, and the prefetched next one (each asked with the others
        # in `skip`, as the page does)
        held: list[int] = []
        for _ in range(4):
            r = _next(client, held)
            assert r.status_code == 200, r.content
            held.append(r.json()["assignment"])
        assert len(set(held)) == 4
        # a fifth lease is hoarding: 429, and nothing more is leased
        r = _next(client, held)
        assert r.status_code == 429
        assert "open clips" in r.json()["detail"]
        assert Assignment.objects.filter(annotator=alice, status="leased").count() == 4

    def test_the_default_is_derived_from_what_the_page_holds(self):
        on_screen, prefetched, held_for_undo, being_saved = 1, 1, 1, 1
        assert settings.LABELING_MAX_OPEN_LEASES == (
            on_screen + prefetched + held_for_undo + being_saved
        )
