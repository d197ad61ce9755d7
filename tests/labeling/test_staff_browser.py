"""Staff pages in real headless Chromium: a new lab's first run (an empty site says what to
do; a campaign is created, an invitation link made and used, at a person's pace), and every
staff page on a phone (390×844) without a page wider than the screen."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from django.conf import settings

from labeling.models import Clip, Invitation, Membership
from pipeline.media import write_image
from tests.conftest import PASSWORD, make_user
from tests.labeling.test_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.labeling.test_staff_clips import labelled  # noqa: F401  (ten votes, a report)

# A person reads a page before acting: the walkthrough pauses this long between steps.
PACE_S = 0.4

# The widest element sticking out of the page, for the failure message.
OVERFLOW_JS = """
const width = document.documentElement.clientWidth;
let worst = null;
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  if (r.right > width + 1 && (!worst || r.right > worst[1])) {
    let scrolled = false;
    for (let p = el.parentElement; p; p = p.parentElement) {
      if (getComputedStyle(p).overflowX === 'auto' || getComputedStyle(p).overflowX === 'scroll') {
        scrolled = true; break;
      }
    }
    if (!scrolled) worst = [el.tagName + (el.id ? '#' + el.id : '') + '.' + el.className, r.right];
  }
}
return [document.documentElement.scrollWidth, width, worst];
"""


def _phone(driver) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
    )


def _log_in(driver, live_server, username: str, next_url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{live_server.url}/accounts/login/?next={next_url}")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)


@pytest.mark.django_db(transaction=True)
class StaffFirstRunBrowserTests:
    def test_a_new_lab_creates_a_campaign_and_an_invited_annotator_joins_it(
        self,
        browser,  # noqa: F811
        live_server,
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select, WebDriverWait

        wait = WebDriverWait(browser, 20)
        make_user("boss", staff=True)
        _phone(browser)
        # given an empty site: the overview says how to start
        _log_in(browser, live_server, "boss", "/staff/overview/")
        start = wait.until(lambda d: d.find_element(By.ID, "no-campaign"))
        assert "Create a campaign" in start.text
        time.sleep(PACE_S)
        browser.find_element(By.ID, "new-campaign").click()
        # when staff fill in a name and keep DFEW's defaults, screening off
        name = wait.until(lambda d: d.find_element(By.ID, "id_name"))
        name.send_keys("Pilot study")
        browser.find_element(By.ID, "id_slug").send_keys("pilot")
        assert (
            browser.find_element(By.ID, "id_labels")
            .get_attribute("value")
            .startswith("1 happy\n2 sad")
        )
        screen = browser.find_element(By.ID, "id_screen_clips")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", screen)
        time.sleep(PACE_S)
        screen.click()
        button = browser.find_element(By.CSS_SELECTOR, ".staff-form button[type=submit]")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
        time.sleep(PACE_S)
        button.click()
        # then they land on its team page, which says who is missing
        wait.until(lambda d: d.find_element(By.ID, "role-annotator"))
        assert "No annotators yet" in browser.find_element(By.ID, "role-annotator").text
        assert "Screening is off" in browser.find_element(By.ID, "role-reviewer").text
        # when they make an annotator's invitation link
        Select(browser.find_element(By.ID, "id_invite_role")).select_by_value("annotator")
        invite = browser.find_element(
            By.CSS_SELECTOR, "form[action$='/team/invite/'] button[type=submit]"
        )
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", invite)
        time.sleep(PACE_S)
        invite.click()
        link = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".staff-link"))
        url = link.get_attribute("value")
        assert url.startswith(f"{live_server.url}/invite/")
        # and a new person opens it, logged out, and chooses a name and password
        browser.delete_all_cookies()
        browser.get(url)
        wait.until(lambda d: d.find_element(By.ID, "id_username")).send_keys("nina")
        browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
        time.sleep(PACE_S)
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        # then she is logged in, on the labelling page, an annotator of the campaign
        wait.until(lambda d: "/label/" in d.current_url)
        assert "nina" in browser.find_element(By.CSS_SELECTOR, ".logout").text
        assert Membership.objects.filter(
            user__username="nina", role="annotator", campaign__slug="pilot"
        ).exists()
        assert Invitation.objects.get().accepted_at is not None


@pytest.mark.django_db(transaction=True)
class StaffPhoneLayoutBrowserTests:
    def test_every_staff_page_fits_a_390_px_phone(
        self,
        browser,  # noqa: F811
        live_server,
        campaign,
        labelled,  # noqa: F811
    ):
        # given a campaign with votes, a report, and a clip with its face crops (a contact
        # sheet 16 tiles of 112 px wide: 1,792 px)
        clip = labelled[1]
        sheet = settings.MEDIA_ROOT / "faces" / f"{clip.pk}.jpg"
        sheet.parent.mkdir(parents=True, exist_ok=True)
        write_image(np.full((224, 1792, 3), 128, np.uint8), sheet)
        Clip.objects.filter(pk=clip.pk).update(faces=f"faces/{clip.pk}.jpg", face_ratio=0.9)
        make_user("boss", staff=True)
        _phone(browser)
        _log_in(browser, live_server, "boss", "/staff/overview/")
        pages = [
            "/staff/overview/",
            f"/staff/campaigns/{campaign.pk}/agreement/",
            f"/staff/campaigns/{campaign.pk}/release/",
            f"/staff/campaigns/{campaign.pk}/rewards/",
            f"/staff/campaigns/{campaign.pk}/team/",
            f"/staff/campaigns/{campaign.pk}/settings/",
            "/staff/campaigns/new/",
            f"/staff/clips/?campaign={campaign.pk}",
            f"/staff/clips/{clip.pk}/",
        ]
        too_wide = {}
        shots = os.environ.get("STAFF_SCREENSHOTS")
        for page in pages:
            browser.get(live_server.url + page)
            time.sleep(PACE_S)
            if shots:  # STAFF_SCREENSHOTS=<folder>: a picture of each page, for the README
                name = page.strip("/").replace("/", "_").replace("?", "_") or "home"
                browser.save_screenshot(f"{shots}/{name}.png")
            scroll_width, width, worst = browser.execute_script(OVERFLOW_JS)
            assert width == 390, page
            if scroll_width > width:
                too_wide[page] = (scroll_width, worst)
        assert too_wide == {}
