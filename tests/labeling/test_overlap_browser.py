"""Staff act on quality in real headless Chromium at phone size: exclude a flagged annotator
from the agreement page, then read the adaptive-overlap plot."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from labeling.models import AgreementReport, Annotation, AnnotatorExclusion, Campaign
from labeling.results import agreement
from tests.conftest import PASSWORD, make_user
from tests.labeling.test_browser import browser  # noqa: F401 (the fixture)
from tests.labeling.test_overlap import write_campaign_csv


@pytest.mark.django_db(transaction=True)
class QualityPagesBrowserTests:
    def test_staff_exclude_a_flagged_annotator_and_read_the_overlap_plot(
        self,
        browser,  # noqa: F811 (the fixture imported above)
        live_server,
        tmp_path,
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        # given: an imported campaign with two careless annotators, and its report
        path = tmp_path / "votes.csv"
        planted = write_campaign_csv(path, n_clips=300, seed=1)
        call_command("import_annotations", str(path), "--campaign", "elsewhere", "--create",
                     stdout=StringIO(), stderr=StringIO())  # fmt: skip
        campaign = Campaign.objects.get(slug="elsewhere")
        report = AgreementReport.objects.create(campaign=campaign)
        agreement.agreement_report_run(report.pk)
        report.refresh_from_db()
        flagged = [a["annotator"] for a in report.result["annotators"] if a["flagged"]]
        careless = {f"r{r:02d}" for r in planted.careless.nonzero()[0]}
        assert flagged and set(flagged) <= careless
        make_user("boss", staff=True)
        browser.set_window_size(390, 844)
        wait = WebDriverWait(browser, 20)
        url = f"/staff/campaigns/{campaign.pk}/agreement/"
        browser.get(f"{live_server.url}/accounts/login/?next={url}")
        browser.find_element(By.NAME, "username").send_keys("boss")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
        table = wait.until(lambda d: d.find_element(By.ID, "aggregation-methods"))
        assert "dawid_skene" in table.text and "mace" in table.text
        # when: staff give a reason and exclude the first flagged annotator (site.js confirms)
        row = browser.find_element(By.CSS_SELECTOR, "#annotators tr.flagged")
        form = row.find_element(By.CSS_SELECTOR, "form[action$='/annotators/exclude/']")
        form.find_element(By.NAME, "reason").send_keys("clicks at random")
        form.find_element(By.TAG_NAME, "button").click()
        wait.until(expected_conditions.alert_is_present()).accept()
        # then: the exclusion is listed with a revoke button, and the votes are out
        listed = wait.until(lambda d: d.find_element(By.ID, "exclusions"))
        exclusion = AnnotatorExclusion.objects.get()
        assert exclusion.annotator.username in listed.text and "Revoke" in listed.text
        assert not Annotation.objects.valid().filter(annotator=exclusion.annotator).exists()
        # and the overlap page draws labels saved against agreement
        browser.find_element(By.LINK_TEXT, "Adaptive overlap on these votes").click()
        plot = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#overlap-plot svg"))
        assert plot.size["width"] > 0
        assert len(browser.find_elements(By.CSS_SELECTOR, "#overlap tbody tr")) == 8
