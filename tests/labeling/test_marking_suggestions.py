"""A model's suggestions on the marking page, in headless Chromium at a person's pace: they
are marks on the timeline ranked by rare-class score; N jumps to the next (its span becomes
the in and out marks), A accepts it (a clip with the model's emotion as the suspected label,
linked to the suggestion), D dismisses it."""

from __future__ import annotations

import pytest

from labeling.media import suggestions as suggestion_services
from labeling.models import Clip, Suggestion
from tests.labeling import test_browser, test_marking_page
from tests.labeling.test_marking_page import _key, _open
from tests.labeling.test_suggestions import probs

browser = test_browser.browser  # the headless Chromium fixture
eve, movie = test_marking_page.eve, test_marking_page.movie  # an extractor; a 3 s movie


def _suggest(user, made) -> None:
    suggestion_services.suggestions_add(
        user=user,
        movie_id=made.pk,
        run="run-7",
        segments=[
            suggestion_services.SuggestedSegment(0.0, 1.0, probs(fear=0.5, disgust=0.1)),
            suggestion_services.SuggestedSegment(1.5, 2.9, probs(disgust=0.8, fear=0.1)),
        ],
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class MarkingPageSuggestionTests:
    def test_n_jumps_a_accepts_d_dismisses_the_ranked_suggestions(
        self, browser, live_server, campaign, eve, movie
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        _suggest(eve, movie)
        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait)
        # ranked: disgust 0.8 + fear 0.1 first, then fear 0.5 + disgust 0.1
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#suggestions tr")) == 2)
        rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#suggestions tr")]
        assert rows[0].startswith("1 1.500–2.900") and "90 %" in rows[0]
        assert rows[1].startswith("2 0.000–1.000") and "60 %" in rows[1]
        marks = browser.find_elements(By.CSS_SELECTOR, "#timeline .range.suggested")
        lefts = sorted(
            float(m.get_attribute("style").split("left:")[1].split("%")[0]) for m in marks
        )
        assert lefts == pytest.approx([0.0, 50.0], abs=0.01)  # 0 s and 1.5 s of a 3 s movie

        _key(browser, "n")  # the best one: its span becomes the marks
        wait.until(lambda d: test_browser._text(d, "mark-in") == "1.500")
        assert test_browser._text(browser, "mark-out") == "2.900"
        assert "Suggestion 1" in test_browser._text(browser, "notice")
        _key(browser, "a")
        wait.until(lambda d: "accepted" in test_browser._text(d, "notice"))
        assert "clip 00001" in test_browser._text(browser, "notice")
        clip = Clip.objects.get()
        assert (clip.start_s, clip.end_s, clip.suspected_label.name) == (1.5, 2.9, "disgust")
        accepted = Suggestion.objects.get(status=Suggestion.Status.ACCEPTED)
        assert accepted.clip_id == clip.pk and accepted.decided_by == eve
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#suggestions tr")) == 1)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline .range.sent")) == 1)

        _key(browser, "n")  # the one left
        wait.until(lambda d: test_browser._text(d, "mark-in") == "0.000")
        _key(browser, "d")
        wait.until(lambda d: "dismissed" in test_browser._text(d, "notice"))
        wait.until(lambda d: not d.find_element(By.ID, "suggestions-box").is_displayed())
        assert Suggestion.objects.get(start_s=0.0).status == Suggestion.Status.DISMISSED
        assert Clip.objects.count() == 1  # a dismissed suggestion makes no clip
