"""Rare-class yield per extractor, split by clips that came from a model's suggestion and clips
marked by hand (labeling/rewards/earnings.py `extractor_yield_by_source`), on the rewards page."""

from __future__ import annotations

import re

import pytest
from django.db import transaction

from labeling.models import Clip, Role
from labeling.rewards import earnings, ledger
from tests.conftest import PASSWORD, make_user
from tests.labeling.test_movies import ready_movie
from tests.labeling.test_suggestions import _result, probs, token_client


@pytest.mark.django_db
class YieldBySourceTests:
    def test_rare_clips_are_counted_apart_for_suggested_and_hand_marked_clips(
        self, client, campaign, admin_user, tmp_path
    ):
        # given: eve accepts two suggestions and marks two clips by hand; ed marks one
        eve, ed = make_user("eve", Role.EXTRACTOR), make_user("ed", Role.EXTRACTOR)
        campaign.annotators.add(eve, ed, through_defaults={"role": Role.EXTRACTOR})
        movie = ready_movie(campaign, tmp_path)
        api = token_client(eve)
        posted = api.post(
            f"/api/v1/movies/{movie.pk}/suggestions/",
            {
                "run": "r1",
                "segments": [
                    {"start_s": 0.0, "end_s": 1.0, "probabilities": probs(disgust=0.9)},
                    {"start_s": 1.0, "end_s": 2.0, "probabilities": probs(fear=0.9)},
                ],
            },
            format="json",
        ).json()
        suggested = [
            Clip.objects.get(
                pk=api.post(f"/api/v1/suggestions/{s['id']}/accept/").json()["clip"]["id"]
            )
            for s in posted["suggestions"]
        ]
        by_hand = api.post(
            f"/api/v1/movies/{movie.pk}/clips/",
            {"segments": [{"start_s": 2.0, "end_s": 3.0}, {"start_s": 0.5, "end_s": 1.5}]},
            format="json",
        ).json()["clips"]
        eds = (
            token_client(ed)
            .post(
                f"/api/v1/movies/{movie.pk}/clips/",
                {"segments": [{"start_s": 0.2, "end_s": 1.2}]},
                format="json",
            )
            .json()["clips"]
        )
        # Final labels: of eve's suggested clips one is rare (disgust); none of her hand ones.
        finals = {
            suggested[0].pk: "disgust",
            suggested[1].pk: "happy",
            by_hand[0]["id"]: "sad",
            by_hand[1]["id"]: "neutral",
            eds[0]["id"]: "fear",
        }
        for clip_id, label in finals.items():
            _result(Clip.objects.get(pk=clip_id), label)
        with transaction.atomic():
            ledger.clips_sync(finals)  # the rare-clip bonuses, by the ledger's one rule

        # when
        rows = {y.username: y for y in earnings.extractor_yield_by_source(campaign.pk)}

        # then
        eve_row, ed_row = rows["eve"], rows["ed"]
        assert (eve_row.suggested_clips, eve_row.suggested_rare) == (2, 1)
        assert (eve_row.hand_clips, eve_row.hand_rare) == (2, 0)
        assert (eve_row.suggested_yield, eve_row.hand_yield) == (0.5, 0.0)
        assert (ed_row.suggested_clips, ed_row.hand_clips, ed_row.hand_rare) == (0, 1, 1)
        assert ed_row.suggested_yield is None
        # The split adds up to the page's existing totals.
        totals = {y.username: y for y in earnings.extractor_yield(campaign.pk)}
        assert totals["eve"].rare_clips == eve_row.suggested_rare + eve_row.hand_rare
        assert totals["eve"].clips == eve_row.suggested_clips + eve_row.hand_clips

        client.login(username="admin", password=PASSWORD)
        html = client.get(f"/staff/campaigns/{campaign.pk}/rewards/").content.decode()
        table = html[html.index('id="yield-by-source"') :]
        cells = re.findall(r"<td>(.*?)</td>", table[: table.index("</table>")])
        assert cells == ["ed", "0", "0", "–", "1", "1", "100 %"] + [
            "eve",
            "2",
            "1",
            "50 %",
            "2",
            "0",
            "0 %",
        ]
