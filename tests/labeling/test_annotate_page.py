"""The labelling page as a person uses it, in headless Chromium, on a laptop and on a phone
(390×844): the half-speed toggle shows when it is on; the campaign's name, instructions and
codebook are on the page; ``?`` opens the keys; on a phone the undo button, all seven emotions
and the notices are above the fold and the earnings line is not cut off."""

from __future__ import annotations

import os
import time

import pytest

from labeling import codebook
from labeling.models import Annotation
from tests.conftest import PASSWORD
from tests.labeling import test_browser

browser = test_browser.browser  # the headless Chromium fixture
PACE = 0.6  # seconds a person takes between two actions


def phone(driver) -> None:
    """An iPhone-size viewport: 390×844 CSS pixels, a touch device's layout rules."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True},
    )


def log_in(driver, live_server, wait, *, path="/label/", username="alice"):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec

    driver.get(f"{live_server.url}/accounts/login/?next={path}")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#labels button.label")))


def in_view(driver, element) -> bool:
    """Whether the element is drawn and wholly inside the viewport, the page not scrolled."""
    return driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return window.scrollY === 0 && r.width > 0 && r.height > 0 && r.top >= 0"
        " && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth;",
        element,
    )


def press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    time.sleep(PACE)
    ActionChains(driver).send_keys(key).perform()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class AnnotatePageBrowserTests:
    def test_the_half_speed_toggle_looks_pressed_while_it_is_on(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        test_browser._playable_clips(campaign, 2)
        wait = WebDriverWait(browser, 20)
        log_in(browser, live_server, wait)
        slow = browser.find_element(By.ID, "slow")
        off = slow.value_of_css_property("background-color")
        time.sleep(PACE)
        slow.click()
        assert slow.get_attribute("aria-pressed") == "true"
        assert (
            browser.execute_script("return document.getElementById('clip-video').playbackRate")
            == 0.5
        )
        assert slow.value_of_css_property("background-color") != off
        press(browser, "s")  # the key turns it off again, after a click on the button
        assert slow.get_attribute("aria-pressed") == "false"
        assert slow.value_of_css_property("background-color") == off

    def test_on_a_phone_undo_fear_the_notice_and_the_earnings_are_in_view(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        test_browser._playable_clips(campaign, 3)
        phone(browser)
        wait = WebDriverWait(browser, 20)
        log_in(browser, live_server, wait)
        assert browser.execute_script("return window.innerWidth") == 390
        fear = browser.find_element(By.CSS_SELECTOR, "#labels button.label:nth-child(7)")
        assert fear.text.split() == ["7", "Fear"]
        assert in_view(browser, fear)
        earnings = browser.find_element(By.ID, "earnings")
        assert in_view(browser, earnings)
        assert "total 0.00 CNY" in earnings.text
        assert browser.execute_script(
            "const e = arguments[0]; return e.scrollWidth <= e.clientWidth"
            " && document.documentElement.scrollWidth <= window.innerWidth;",
            earnings,
        )
        # a tap on "1 Happy": the next clip, the held label's notice and an undo button in view
        time.sleep(PACE)
        browser.find_element(By.CSS_SELECTOR, "#labels button.label:nth-child(1)").click()
        wait.until(lambda d: test_browser._text(d, "clip-number") == "00002")
        notice = browser.find_element(By.ID, "notice")
        assert "press Z" in notice.text and in_view(browser, notice)
        undo = browser.find_element(By.ID, "undo")
        assert undo.is_enabled() and in_view(browser, undo)
        if os.environ.get("SCREENSHOTS"):
            browser.save_screenshot(os.path.join(os.environ["SCREENSHOTS"], "label-phone.png"))
        time.sleep(PACE)
        undo.click()
        wait.until(lambda d: test_browser._text(d, "clip-number") == "00001")
        assert "taken back" in notice.text and in_view(browser, notice)
        assert not undo.is_enabled()
        time.sleep(3.5)  # past the undo window: nothing was stored
        assert not Annotation.objects.exists()

    def test_the_campaign_name_instructions_and_codebook_are_on_the_page(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        clips = test_browser._playable_clips(campaign, 3)
        happy = campaign.labels.get(name="happy")
        fear = campaign.labels.get(name="fear")
        codebook.codebook_save(
            campaign=campaign,
            instructions="Label the face in the middle of the frame.",
            labels={
                happy.pk: ("Smile with raised cheeks.", clips[2].number),
                fear.pk: ("Widened eyes, raised brows.", None),
            },
        )
        wait = WebDriverWait(browser, 20)
        log_in(browser, live_server, wait)
        assert test_browser._text(browser, "campaign-name") == "Campaign"
        panel = browser.find_element(By.CSS_SELECTOR, "details.guide")
        time.sleep(PACE)
        panel.find_element(By.TAG_NAME, "summary").click()
        assert "Label the face in the middle of the frame." in panel.text
        entries = panel.find_elements(By.CSS_SELECTOR, "dl.codebook dt")
        assert [e.text for e in entries][:1] == ["1 Happy"] and len(entries) == 7
        assert "Smile with raised cheeks." in panel.text
        if os.environ.get("SCREENSHOTS"):
            browser.save_screenshot(os.path.join(os.environ["SCREENSHOTS"], "label-guide.png"))
        assert "Widened eyes, raised brows." in panel.text
        # the example clip plays for the annotator (she holds no lease on it)
        example = panel.find_element(By.CSS_SELECTOR, "details.example")
        time.sleep(PACE)
        example.find_element(By.TAG_NAME, "summary").click()
        video = example.find_element(By.TAG_NAME, "video")
        assert video.get_attribute("src").endswith(clips[2].video.name)
        browser.execute_script("arguments[0].load()", video)
        wait.until(lambda d: d.execute_script("return arguments[0].readyState", video) >= 1)
        # each emotion's button carries its description
        first = browser.find_element(By.CSS_SELECTOR, "#labels button.label:nth-child(1)")
        assert first.get_attribute("title") == "Smile with raised cheeks."

    def test_question_mark_opens_the_keys_sheet_and_the_keys_work_after_it_closes(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        test_browser._playable_clips(campaign, 2)
        wait = WebDriverWait(browser, 20)
        log_in(browser, live_server, wait)
        sheet = browser.find_element(By.ID, "keys-sheet")
        press(browser, "?")
        assert sheet.is_displayed()
        for key in ("1", "7", "Z", "R", "S", "?", "Esc"):
            assert key in [k.text for k in sheet.find_elements(By.TAG_NAME, "kbd")]
        press(browser, "2")  # keys of the page do nothing while the sheet is open
        assert test_browser._text(browser, "clip-number") == "00001"
        press(browser, Keys.ESCAPE)
        wait.until(lambda d: not sheet.is_displayed())
        # the "?" button opens it too, and after "Close" the keys label again
        time.sleep(PACE)
        browser.find_element(By.ID, "keys-open").click()
        assert sheet.is_displayed()
        time.sleep(PACE)
        browser.find_element(By.ID, "keys-close").click()
        wait.until(lambda d: not sheet.is_displayed())
        press(browser, "2")
        wait.until(lambda d: test_browser._text(d, "clip-number") == "00002")

    def test_the_page_and_its_keys_sheet_in_simplified_chinese_on_a_phone(
        self, browser, live_server, campaign, alice
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        test_browser._playable_clips(campaign, 2)
        phone(browser)
        wait = WebDriverWait(browser, 20)
        browser.get(f"{live_server.url}/accounts/login/")
        browser.add_cookie({"name": "django_language", "value": "zh-hans"})
        log_in(browser, live_server, wait)
        assert "重播" in browser.find_element(By.ID, "replay").text
        assert browser.find_element(By.CSS_SELECTOR, "html").get_attribute("lang") == "zh-hans"
        fear = browser.find_element(By.CSS_SELECTOR, "#labels button.label:nth-child(7)")
        assert in_view(browser, fear)
        assert in_view(browser, browser.find_element(By.ID, "undo"))
        assert in_view(browser, browser.find_element(By.ID, "earnings"))
        time.sleep(PACE)
        browser.find_element(By.ID, "keys-open").click()
        assert browser.find_element(By.ID, "keys-sheet").is_displayed()
