"""The agreement report: the service and task, the API, the staff page and the command."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from labeling.models import AgreementReport, JobStatus
from labeling.results import agreement
from labeling.results.aggregation import clips_aggregate
from labeling.results.imports import annotations_import
from labeling.tasks import agreement_report_periodic_task, agreement_report_task
from tests.conftest import PASSWORD
from tests.pipeline.test_agreement import FLEISS_1971

# Fleiss (1971), Psychological Bulletin 76(5), Table 1: 30 patients, 6 raters, 5 diagnoses
# (depression, personality disorder, schizophrenia, neurosis, other); kappa .430. The count
# table is the one the pure tests check against the paper.
DIAGNOSES = ["depression", "personality", "schizophrenia", "neurosis", "other"]


@pytest.fixture
def fleiss_campaign(db):
    """The Fleiss (1971) study imported as a campaign of 6 raters per clip."""
    from labeling import campaigns

    campaign = campaigns.campaign_create(
        name="Fleiss 1971",
        slug="fleiss",
        labels=list(enumerate(DIAGNOSES, start=1)),
        rare=(),
        annotations_per_clip=6,
        single_label_min_votes=4,
    )
    rows, line = [], 1
    for clip, votes in enumerate(FLEISS_1971, start=1):
        rater = 0
        for code, n in enumerate(votes):
            for _ in range(n):
                line += 1
                rater += 1
                # Raters rotate so every psychiatrist rates many patients.
                name = f"psy{(clip + rater) % 12:02d}"
                rows.append(
                    (
                        line,
                        {
                            "clip": str(clip),
                            "annotator": name,
                            "label": DIAGNOSES[code],
                            "duration_s": str(clip / 4),
                        },
                    )
                )
    summary = annotations_import(
        campaign=campaign, header=["clip", "annotator", "label", "duration_s"], rows=rows
    )
    clips_aggregate(summary.complete_clip_ids)
    return campaign


@pytest.mark.django_db
class AgreementReportServiceTests:
    def test_it_reproduces_fleiss_1971_from_the_database(self, fleiss_campaign):
        report = agreement.campaign_agreement(fleiss_campaign)
        assert report["n_clips"] == 30 and report["n_annotations"] == 180
        assert report["fleiss_kappa"] == pytest.approx(0.430, abs=5e-4)
        per_label = report["kappa_per_label"]
        # Fleiss (1971): .245 .245 .520 .471 .566
        assert [round(per_label[d], 3) for d in DIAGNOSES] == [0.245, 0.245, 0.520, 0.471, 0.566]
        assert report["landis_koch"] == "moderate"
        # 4 or more of 6 votes: the single labels counted from the table by hand.
        single = sum(1 for row in FLEISS_1971 if max(row) >= 4)
        assert report["n_single_labelled"] == single
        assert sum(report["single_per_label"].values()) == single

    def test_the_task_stores_the_report_with_plots_and_a_rerun_does_nothing(self, fleiss_campaign):
        report = AgreementReport.objects.create(campaign=fleiss_campaign)
        assert agreement_report_task(report.pk) is True
        report.refresh_from_db()
        assert report.status == JobStatus.DONE and report.progress == 1.0
        assert report.result["fleiss_kappa"] == pytest.approx(0.430, abs=5e-4)
        assert report.plots["kappa_per_label"].startswith("<svg")
        finished = report.finished_at
        assert agreement_report_task(report.pk) is False  # a duplicate delivery
        report.refresh_from_db()
        assert report.finished_at == finished

    def test_the_periodic_task_reports_only_on_campaigns_whose_results_changed(
        self, fleiss_campaign, django_capture_on_commit_callbacks, monkeypatch
    ):
        sent = []
        monkeypatch.setattr(agreement_report_task, "delay", lambda pk: sent.append(pk))
        with django_capture_on_commit_callbacks(execute=True):
            assert agreement_report_periodic_task() == 1
        assert len(sent) == 1
        agreement_report_task(sent[0])
        with django_capture_on_commit_callbacks(execute=True):
            assert agreement_report_periodic_task() == 0

    def test_a_failure_is_stored_with_its_message(self, fleiss_campaign, monkeypatch):
        def broken(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(agreement, "report_plots", broken)
        report = AgreementReport.objects.create(campaign=fleiss_campaign)
        with pytest.raises(RuntimeError):
            agreement_report_task(report.pk)
        report.refresh_from_db()
        assert report.status == JobStatus.FAILED and "disk full" in report.error


def auth(client, user):
    return {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}


@pytest.mark.django_db
class CampaignAgreementApiTests:
    def test_staff_get_the_report_computed_now_when_none_is_stored(
        self, client, fleiss_campaign, admin_user
    ):
        r = client.get(
            f"/api/v1/campaigns/{fleiss_campaign.pk}/agreement/", **auth(client, admin_user)
        )
        assert r.status_code == 200
        body = r.json()
        assert body["report"] is None and body["status"] == "computed-now"
        result = body["result"]
        for key in (
            "n_clips",
            "n_annotations",
            "fleiss_kappa",
            "fleiss_kappa_ci",
            "kappa_per_label",
            "observed_agreement",
            "chance_agreement",
            "krippendorff_alpha",
            "landis_koch",
            "n_single_labelled",
            "single_per_label",
            "table2",
            "annotators",
        ):
            assert key in result
        assert set(result["table2"]["depression"]) == {"0-2s", "2-5s", "5s+", "total", "percent"}
        assert set(result["annotators"][0]) >= {
            "annotator",
            "n_labels",
            "agreement_with_others_majority",
            "cohen_kappa_vs_majority",
            "dawid_skene_accuracy",
            "median_seconds",
            "flagged",
        }
        assert not AgreementReport.objects.exists()  # GET changes nothing

    def test_staff_get_the_latest_stored_report(self, client, fleiss_campaign, admin_user):
        report = AgreementReport.objects.create(campaign=fleiss_campaign)
        agreement_report_task(report.pk)
        r = client.get(
            f"/api/v1/campaigns/{fleiss_campaign.pk}/agreement/", **auth(client, admin_user)
        )
        assert r.json()["report"] == report.pk and r.json()["status"] == "done"

    def test_post_queues_a_report(
        self, client, fleiss_campaign, admin_user, django_capture_on_commit_callbacks, monkeypatch
    ):
        sent = []
        monkeypatch.setattr(agreement_report_task, "delay", lambda pk: sent.append(pk))
        with django_capture_on_commit_callbacks(execute=True):
            r = client.post(
                f"/api/v1/campaigns/{fleiss_campaign.pk}/agreement/", **auth(client, admin_user)
            )
        assert r.status_code == 202
        assert sent == [r.json()["report"]]
        assert AgreementReport.objects.get().status == JobStatus.QUEUED

    def test_annotators_get_403_and_strangers_401(self, client, fleiss_campaign, alice):
        url = f"/api/v1/campaigns/{fleiss_campaign.pk}/agreement/"
        assert client.get(url, **auth(client, alice)).status_code == 403
        assert (
            client.post(url, **{"HTTP_AUTHORIZATION": f"Token {alice.auth_token.key}"}).status_code
            == 403
        )
        assert client.get(url).status_code == 401
        assert not AgreementReport.objects.exists()

    def test_an_unknown_campaign_is_404_and_a_wrong_method_405(self, client, admin_user, db):
        headers = auth(client, admin_user)
        assert client.get("/api/v1/campaigns/999/agreement/", **headers).status_code == 404
        assert client.delete("/api/v1/campaigns/999/agreement/", **headers).status_code == 405


@pytest.mark.django_db
class AgreementPageTests:
    def test_staff_see_kappa_table2_annotators_plots_and_history(
        self, client, fleiss_campaign, admin_user
    ):
        report = AgreementReport.objects.create(campaign=fleiss_campaign)
        agreement_report_task(report.pk)
        client.login(username=admin_user.username, password=PASSWORD)
        html = client.get(f"/staff/campaigns/{fleiss_campaign.pk}/agreement/").content.decode()
        assert "Fleiss' κ = 0.430" in html and "moderate" in html
        assert 'id="table2"' in html and "<th>Depression</th>" in html
        assert html.count("<svg") == 3
        assert 'id="annotators"' in html and "psy01" in html
        assert f"/staff/campaigns/{fleiss_campaign.pk}/agreement/{report.pk}/" in html
        overview = client.get("/staff/overview/").content.decode()
        assert "Fleiss' κ 0.4302" in overview

    def test_a_running_report_shows_its_progress_and_refreshes(
        self, client, fleiss_campaign, admin_user
    ):
        AgreementReport.objects.create(
            campaign=fleiss_campaign, status=JobStatus.RUNNING, progress=0.4, stage="bootstrap"
        )
        client.login(username=admin_user.username, password=PASSWORD)
        html = client.get(f"/staff/campaigns/{fleiss_campaign.pk}/agreement/").content.decode()
        assert '<progress max="1" value="0.4">' in html and "bootstrap" in html
        assert 'http-equiv="refresh"' in html

    def test_the_run_button_queues_a_report(self, client, fleiss_campaign, admin_user):
        client.login(username=admin_user.username, password=PASSWORD)
        r = client.post(f"/staff/campaigns/{fleiss_campaign.pk}/agreement/run/")
        assert r.status_code == 302
        assert AgreementReport.objects.get().status == JobStatus.QUEUED

    def test_staff_invalidate_an_annotator_from_the_page(self, client, fleiss_campaign, admin_user):
        client.login(username=admin_user.username, password=PASSWORD)
        url = f"/staff/campaigns/{fleiss_campaign.pk}/annotators/invalidate/"
        r = client.post(url, {"annotator": "psy01", "reason": ""})
        assert r.status_code == 302
        from labeling.models import Annotation

        assert not Annotation.objects.filter(invalidated_at__isnull=False).exists()
        client.post(url, {"annotator": "psy01", "reason": "quality review"})
        assert (
            Annotation.objects.filter(
                annotator__username="psy01", invalidated_at__isnull=True
            ).count()
            == 0
        )

    def test_annotators_and_reviewers_are_refused(self, client, fleiss_campaign, alice, rita):
        for user in (alice, rita):
            client.login(username=user.username, password=PASSWORD)
            url = f"/staff/campaigns/{fleiss_campaign.pk}/agreement/"
            assert client.get(url).status_code == 403
            assert client.post(url + "run/").status_code == 403
        assert not AgreementReport.objects.exists()


@pytest.mark.django_db
class AgreementReportCommandTests:
    def test_it_prints_the_report_and_stores_it(self, fleiss_campaign):
        out = io.StringIO()
        call_command("agreement_report", "fleiss", stdout=out, stderr=io.StringIO())
        text = out.getvalue()
        assert "Fleiss' kappa: 0.430" in text and "moderate agreement" in text
        assert "Table 2" in text and text.strip().splitlines()[-1].startswith("report ")
        assert AgreementReport.objects.get().status == JobStatus.DONE

    def test_json_prints_the_named_figures(self, fleiss_campaign):
        out = io.StringIO()
        call_command("agreement_report", "fleiss", "--json", stdout=out, stderr=io.StringIO())
        body = out.getvalue().rsplit("report ", 1)[0]
        data = json.loads(body)
        assert data["fleiss_kappa"] == pytest.approx(0.430, abs=5e-4)
        assert data["n_clips"] == 30


@pytest.mark.django_db
class AgreementStalenessTests:
    def test_invalidating_labels_makes_the_campaign_due_for_a_new_report(
        self, fleiss_campaign, admin_user
    ):
        from labeling.results.aggregation import annotator_invalidate

        report = AgreementReport.objects.create(campaign=fleiss_campaign)
        agreement_report_task(report.pk)
        assert agreement.campaigns_due_for_report() == []
        annotator_invalidate(
            staff=admin_user, campaign_id=fleiss_campaign.pk, username="psy01", reason="review"
        )
        assert agreement.campaigns_due_for_report() == [fleiss_campaign]

    def test_the_page_lists_labels_and_table2_in_code_order(
        self, client, fleiss_campaign, admin_user
    ):
        report = AgreementReport.objects.create(campaign=fleiss_campaign)
        agreement_report_task(report.pk)
        client.login(username=admin_user.username, password=PASSWORD)
        html = client.get(f"/staff/campaigns/{fleiss_campaign.pk}/agreement/").content.decode()
        table = html[html.index('id="table2"') :]
        positions = [table.index(f"<th>{name.capitalize()}</th>") for name in DIAGNOSES]
        assert positions == sorted(positions) and table.index("<th>Total</th>") > positions[-1]
