"""The extractor's marking page and what it stands on: withdrawing a sent clip (who may, and
not once its extraction has started), a failed movie's reason without server paths, the
optional face point of a segment; and the page in headless Chromium at a person's pace, on a
laptop and on a phone (390×844)."""

from __future__ import annotations

import os
import time

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from labeling.loop import services
from labeling.media import extraction, movies
from labeling.models import Clip, MediaStatus, Movie, Role
from pipeline import media
from tests.conftest import PASSWORD, make_user
from tests.labeling import test_browser
from tests.labeling.test_annotate_page import in_view, phone
from tests.labeling.test_movies import movie_file

browser = test_browser.browser  # the headless Chromium fixture
PACE = 0.6  # seconds a person takes between two actions


@pytest.fixture
def eve(campaign):
    """An extractor on the campaign."""
    user = make_user("eve", Role.EXTRACTOR)
    campaign.annotators.add(user, through_defaults={"role": Role.EXTRACTOR})
    return user


@pytest.fixture
def movie(campaign, eve, tmp_path) -> Movie:
    made = movies.movie_register_path(campaign=campaign, path=movie_file(tmp_path), user=eve)
    return movies.movie_probe(made.pk)


def _propose(user, movie, *spans) -> list[Clip]:
    return movies.clip_propose(
        user=user, movie_id=movie.pk, segments=[movies.Segment(a, b) for a, b in spans]
    ).clips


def _api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _withdraw(user, clip_id: int):
    return _api(user).post(f"/api/v1/clips/{clip_id}/withdraw/")


@pytest.mark.django_db
class ClipWithdrawTests:
    def test_the_extractor_withdraws_a_pending_clip_and_its_place_is_free_again(
        self, campaign, eve, movie
    ):
        campaign.clips_per_movie = 1
        campaign.save()
        (clip,) = _propose(eve, movie, (0.0, 1.0))
        response = _withdraw(eve, clip.pk)
        assert response.status_code == 200, response.data
        assert response.data == {"withdrawn": clip.pk, "number": clip.number}
        assert not Clip.objects.filter(pk=clip.pk).exists()
        # the queued extraction finds nothing to do; the span and the movie's place are free
        assert extraction.clip_extract(clip.pk) is False
        (again,) = _propose(eve, movie, (0.0, 1.0))
        assert again.media_status == MediaStatus.PENDING

    def test_staff_withdraw_anyones_pending_clip(self, campaign, eve, movie, admin_user):
        (clip,) = _propose(eve, movie, (0.0, 1.0))
        assert _withdraw(admin_user, clip.pk).status_code == 200
        assert not Clip.objects.exists()

    def test_others_may_not_and_nothing_changes(self, campaign, eve, movie, alice, rita):
        (clip,) = _propose(eve, movie, (0.0, 1.0))
        fred = make_user("fred", Role.EXTRACTOR)
        # another extractor of the same campaign
        campaign.annotators.add(fred, through_defaults={"role": Role.EXTRACTOR})
        stranger = make_user("sam", Role.EXTRACTOR)  # an extractor of no campaign of it
        response = _withdraw(fred, clip.pk)
        assert response.status_code == 403
        assert "proposed by someone else" in response.data["detail"]
        assert _withdraw(stranger, clip.pk).status_code == 404
        assert _withdraw(alice, clip.pk).status_code == 403  # annotators do not withdraw
        assert _withdraw(rita, clip.pk).status_code == 403  # nor reviewers
        assert _withdraw(None, clip.pk).status_code == 401
        assert _withdraw(eve, clip.pk + 1000).status_code == 404
        assert _api(eve).get(f"/api/v1/clips/{clip.pk}/withdraw/").status_code == 405
        assert Clip.objects.get(pk=clip.pk).media_status == MediaStatus.PENDING

    def test_once_a_worker_has_claimed_the_clip_it_is_a_clear_409(self, campaign, eve, movie):
        (clip,) = _propose(eve, movie, (0.0, 1.0))
        assert extraction.clip_claim(clip.pk, "task-1")
        response = _withdraw(eve, clip.pk)
        assert response.status_code == 409
        assert response.data["detail"] == (
            f"Clip {clip.number:05d} can no longer be withdrawn: its extraction has started "
            "(extracting)."
        )
        assert Clip.objects.get(pk=clip.pk).media_status == MediaStatus.EXTRACTING

    def test_an_extracted_clip_is_a_409_too(self, campaign, eve, movie):
        (clip,) = _propose(eve, movie, (0.0, 1.0))
        assert extraction.clip_extract(clip.pk) is True  # real ffmpeg, real face detector
        response = _withdraw(eve, clip.pk)
        assert response.status_code == 409 and "(ready)" in response.data["detail"]
        assert Clip.objects.filter(pk=clip.pk).exists()


@pytest.mark.django_db
class MovieFailureTests:
    def test_a_movie_that_fails_its_probe_says_why_without_paths_or_ffmpegs_output(
        self, campaign, eve, movie
    ):
        # given a movie whose stored file was overwritten by bytes that are no video
        stored = settings.MEDIA_ROOT / movie.source.name
        stored.write_bytes(b"this is not a video, only text " * 200)
        # when it is probed again (real ffmpeg)
        failed = movies.movie_probe(movie.pk)
        # then the reason names the movie and what is wrong, nothing of the server
        assert failed.status == Movie.Status.FAILED
        assert failed.error == "film is not a video file (ffmpeg cannot read it)"
        detail = _api(eve).get(f"/api/v1/movies/{movie.pk}/").data
        assert detail["error"] == failed.error
        for leak in (str(settings.MEDIA_ROOT), "/", "ffmpeg said", "Invalid data"):
            assert leak not in failed.error

    def test_a_movie_whose_file_is_gone_does_not_name_the_servers_folder(self, movie):
        (settings.MEDIA_ROOT / movie.source.name).unlink()
        failed = movies.movie_probe(movie.pk)
        assert failed.status == Movie.Status.FAILED
        assert failed.error == "film does not exist"

    def test_the_rule_turns_ffmpegs_raw_output_into_one_sentence(self):
        raw = media.MediaError(
            "[mov,mp4 @ 0x55d] moov atom not found\n/srv/media/movies/lab/x.mp4: Invalid data"
        )
        assert movies.failure_reason(raw, "movies/lab/x.mp4", "Film") == (
            "Film cannot be read as a video"
        )
        rate = media.MediaError("/srv/m/a/x.mp4: its frame rate is 30000/1001 and odd")
        assert (
            movies.failure_reason(rate, "", "Film") == "Film: its frame rate is 30000/1001 and odd"
        )


@pytest.mark.django_db
class FacePointTests:
    def test_a_segment_with_a_face_point_is_accepted(self, eve, movie):
        response = _api(eve).post(
            f"/api/v1/movies/{movie.pk}/clips/",
            {"segments": [{"start_s": 0.0, "end_s": 1.0, "face_point": [0.5, 0.4]}]},
            format="json",
        )
        assert response.status_code == 201, response.data
        assert Clip.objects.count() == 1


# --- the page in Chromium ----------------------------------------------------------------


def _open(driver, live_server, wait, username="eve", playable=True):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{live_server.url}/accounts/login/?next=/extract/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#suspected option:nth-child(2)"))
    if playable:
        wait.until(lambda d: _js(d, "document.getElementById('movie-video').readyState") >= 1)


def _js(driver, script: str):
    return driver.execute_script(f"return {script}")


def _play_to(driver, wait, t: float) -> float:
    """Plays on past ``t`` seconds and pauses there, as a person watching for the moment; the
    time it stopped at. (Django's test server answers media in a way Chromium does not seek
    in, so the tests play rather than jump; frame steps are tested elsewhere.)"""
    driver.execute_script("document.getElementById('movie-video').play();")
    wait.until(lambda d: _js(d, "document.getElementById('movie-video').currentTime") > t)
    driver.execute_script("document.getElementById('movie-video').pause();")
    wait.until(lambda d: _js(d, "document.getElementById('movie-video').paused"))
    time.sleep(PACE)
    return _js(driver, "document.getElementById('movie-video').currentTime")


def _in(t: float) -> str:
    """The in mark of the frame on screen at ``t`` (25 fps), as the page shows it."""
    return f"{int(t * 25 + 1e-4) / 25:.3f}"


def _out(t: float) -> str:
    return f"{(int(t * 25 + 1e-4) + 1) / 25:.3f}"


def _key(driver, key: str) -> None:
    """A key pressed on whatever has the focus (the page, a button, a drop-down)."""
    from selenium.webdriver.common.action_chains import ActionChains

    time.sleep(PACE)
    ActionChains(driver).send_keys(key).perform()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
class MarkingPageBrowserTests:
    def test_keys_work_after_the_drop_down_buttons_mark_and_the_timeline_shows_ranges(
        self, browser, live_server, campaign, eve, movie
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import Select, WebDriverWait

        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait)
        # the emotion chosen first, with the mouse, then I and O on the keyboard
        time.sleep(PACE)
        Select(browser.find_element(By.ID, "suspected")).select_by_value("sad")
        _key(browser, "i")  # on frame 0
        wait.until(lambda d: test_browser._text(d, "mark-in") == "0.000")
        shown = _play_to(browser, wait, 0.8)
        _key(browser, "o")
        wait.until(lambda d: test_browser._text(d, "mark-out") == _out(shown))
        # the current marks are drawn on the timeline
        current = browser.find_element(By.CSS_SELECTOR, "#timeline .range.current")
        assert current.get_attribute("title").startswith(f"0.000–{_out(shown)} s")
        time.sleep(PACE)
        browser.find_element(By.ID, "add").click()  # a button: the keys go on working
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#segments tr")) == 1)
        # the in and out buttons mark as the keys do
        start = _play_to(browser, wait, 1.3)
        time.sleep(PACE)
        browser.find_element(By.ID, "in-button").click()
        assert test_browser._text(browser, "mark-in") == _in(start)
        end = _play_to(browser, wait, 2.4)
        _key(browser, "o")  # after a click on a button
        wait.until(lambda d: test_browser._text(d, "mark-out") == _out(end))
        time.sleep(PACE)
        browser.find_element(By.ID, "out-button").click()
        assert test_browser._text(browser, "mark-out") == _out(end)
        _key(browser, Keys.ENTER)  # add
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#segments tr")) == 2)
        # both segments are ranges on the timeline, where they lie in the 3 s movie
        marked = browser.find_elements(By.CSS_SELECTOR, "#timeline .range.marked")
        lefts = [float(m.get_attribute("style").split("left:")[1].split("%")[0]) for m in marked]
        assert lefts == pytest.approx([0.0, 100 * float(_in(start)) / 3], abs=0.01)
        # a drop-down of the segment list, then I still marks
        time.sleep(PACE)
        row_select = browser.find_elements(By.CSS_SELECTOR, "#segments select")[1]
        Select(row_select).select_by_value("fear")
        _key(browser, "i")
        wait.until(lambda d: test_browser._text(d, "mark-in") == _in(end))
        # sent: the clips are ranges too
        time.sleep(PACE)
        browser.find_element(By.ID, "send").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#timeline .range.sent")) == 2)
        if os.environ.get("SCREENSHOTS"):
            browser.save_screenshot(os.path.join(os.environ["SCREENSHOTS"], "mark-desk.png"))
        assert [c.suspected_label.name for c in Clip.objects.order_by("start_s")] == ["sad", "fear"]

    def test_a_segment_preview_plays_from_in_to_out_and_stops(
        self, browser, live_server, campaign, eve, movie
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait)
        _key(browser, "i")  # frame 0
        end = _play_to(browser, wait, 1.2)
        _key(browser, "o")
        _play_to(browser, wait, end + 0.5)  # watched on, past the out point
        browser.execute_script(
            "window.seen = []; const v = document.getElementById('movie-video');"
            "v.addEventListener('timeupdate', () => window.seen.push(v.currentTime));"
        )
        time.sleep(PACE)
        browser.find_element(By.ID, "preview").click()
        # it starts at the in point, plays, and stops at the out point
        wait.until(lambda d: len(_js(d, "window.seen")) > 2)
        wait.until(lambda d: _js(d, "document.getElementById('movie-video').paused"))
        seen = _js(browser, "window.seen")
        stopped = _js(browser, "document.getElementById('movie-video').currentTime")
        assert min(seen) < 0.3  # from the in point
        assert abs(stopped - float(_out(end))) < 0.1  # to the out point, then paused

    def test_space_and_i_work_once_the_player_itself_has_the_focus(
        self, browser, live_server, campaign, eve, movie
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait)
        playing = "!document.getElementById('movie-video').paused"
        # as after a click on the player's own controls: the video element has the focus
        browser.execute_script("arguments[0].focus()", browser.find_element(By.ID, "movie-video"))
        _key(browser, Keys.SPACE)
        wait.until(lambda d: _js(d, playing))
        _key(browser, Keys.SPACE)
        wait.until(lambda d: not _js(d, playing))
        shown = _js(browser, "document.getElementById('movie-video').currentTime")
        _key(browser, "i")
        wait.until(lambda d: test_browser._text(d, "mark-in") == _in(shown))

    def test_a_face_point_is_drawn_and_sent_with_its_segment(
        self, browser, live_server, campaign, eve, movie
    ):
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait)
        browser.execute_script(
            "window.sentBodies = []; const f = window.fetch;"
            "window.fetch = (u, o) => { if (o && o.body) window.sentBodies.push(o.body);"
            " return f(u, o); };"
        )
        _key(browser, "i")
        # a click in the middle of the picture marks the face there
        box = _js(
            browser, "document.getElementById('movie-video').getBoundingClientRect().toJSON()"
        )
        layer = browser.find_element(By.ID, "face-layer")
        layer_box = _js(
            browser, "document.getElementById('face-layer').getBoundingClientRect().toJSON()"
        )
        time.sleep(PACE)
        ActionChains(browser).move_to_element_with_offset(
            layer,
            int(box["left"] + box["width"] / 2 - (layer_box["left"] + layer_box["width"] / 2)),
            int(box["top"] + box["height"] / 2 - (layer_box["top"] + layer_box["height"] / 2)),
        ).click().perform()
        x, y = (float(v) for v in test_browser._text(browser, "face-point").split(", "))
        assert abs(x - 0.5) < 0.03 and abs(y - 0.5) < 0.03
        marker = browser.find_element(By.ID, "face-marker")
        assert marker.is_displayed()
        _play_to(browser, wait, 1.0)
        _key(browser, "o")
        _key(browser, "\ue007")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#segments tr")) == 1)
        time.sleep(PACE)
        browser.find_element(By.ID, "send").click()
        wait.until(lambda d: Clip.objects.count() == 1)
        import json

        (body,) = [json.loads(b) for b in _js(browser, "window.sentBodies") if "segments" in b]
        (segment,) = body["segments"]
        assert segment["face_point"] == pytest.approx([x, y], abs=0.006)

    def test_a_sent_clip_is_withdrawn_from_the_page(
        self, browser, live_server, campaign, eve, movie
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        _propose(eve, movie, (0.0, 1.0), (1.2, 2.0))
        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#clips button.withdraw")) == 2)
        time.sleep(PACE)
        browser.find_elements(By.CSS_SELECTOR, "#clips button.withdraw")[0].click()
        wait.until(lambda d: "withdrawn" in test_browser._text(d, "notice"))
        assert test_browser._text(browser, "notice") == "Clip 00001 withdrawn."
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#clips tr")) == 1)
        assert list(Clip.objects.values_list("number", flat=True)) == [2]

    def test_a_refused_upload_is_said_in_view_on_a_phone(
        self, browser, live_server, campaign, eve, tmp_path
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        fake = tmp_path / "holiday.mp4"
        fake.write_text("not a video at all\n" * 100)
        phone(browser)
        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait, playable=False)
        time.sleep(PACE)
        browser.find_element(By.CSS_SELECTOR, "details.upload summary").click()
        browser.find_element(By.ID, "upload-file").send_keys(str(fake))
        time.sleep(PACE)
        browser.find_element(By.CSS_SELECTOR, "#upload button[type=submit]").click()
        wait.until(lambda d: "Not accepted" in test_browser._text(d, "notice"))
        notice = browser.find_element(By.ID, "notice")
        assert "holiday.mp4 is not a video file" in notice.text
        assert in_view(browser, notice)  # without scrolling
        if os.environ.get("SCREENSHOTS"):
            browser.save_screenshot(os.path.join(os.environ["SCREENSHOTS"], "mark-phone.png"))
        assert not Movie.objects.exists()

    def test_the_movie_list_follows_the_movie_and_a_failure_shows_no_path(
        self, browser, live_server, campaign, eve, movie
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        # given a movie waiting for its probe (the list says so)
        Movie.objects.filter(pk=movie.pk).update(status=Movie.Status.PENDING)
        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait, playable=False)
        option = lambda d: d.find_element(By.CSS_SELECTOR, "#movie option").text  # noqa: E731
        wait.until(lambda d: option(d) == "film (pending)")
        # when the probe is done, the list says ready without a reload
        movies.movie_probe(movie.pk)
        wait.until(lambda d: option(d) == "film (ready)")
        # and a movie that fails says why, in words, with nothing of the server
        (settings.MEDIA_ROOT / movie.source.name).write_bytes(b"garbage " * 500)
        Movie.objects.filter(pk=movie.pk).update(status=Movie.Status.PENDING)
        movies.movie_probe(movie.pk)
        browser.refresh()
        wait.until(lambda d: "failed" in test_browser._text(d, "movie-state"))
        state = test_browser._text(browser, "movie-state")  # the old probe's figures gone too
        assert state == "failed: film is not a video file (ffmpeg cannot read it)"
        assert option(browser) == "film (failed)"

    def test_the_extractor_sees_her_own_earnings(
        self, browser, live_server, campaign, eve, movie, rita
    ):
        from selenium.webdriver.support.ui import WebDriverWait

        # given one of eve's clips passed screening (1.00 by default, from the ledger)
        (clip,) = _propose(eve, movie, (0.0, 1.0))
        Clip.objects.filter(pk=clip.pk).update(
            status=Clip.Status.SCREENING, media_status=MediaStatus.READY
        )
        services.clip_screen(reviewer=rita, clip_id=clip.pk, shows_face=True, shows_emotion=True)
        wait = WebDriverWait(browser, 30)
        _open(browser, live_server, wait)
        assert test_browser._text(browser, "earnings") == (
            "Earned today 1.00 · pending 1.00 · held 0.00 · paid 0.00 · total 1.00 CNY"
        )


@pytest.mark.django_db(transaction=True)
class ClipWithdrawRaceTests:
    def test_a_withdrawal_and_a_workers_claim_at_once_let_exactly_one_through(
        self, campaign, eve, movie
    ):
        """Each round: a thread withdraws while another claims the same pending clip, both on
        their own database connection, released together. Either the clip is gone and the
        claim found nothing, or the claim holds and the withdrawal was a 409."""
        import threading

        from django.db import connection

        from annotation_site.errors import Conflict

        outcomes = set()
        for round_ in range(6):
            (clip,) = _propose(eve, movie, (round_ * 0.4, round_ * 0.4 + 0.6))
            barrier = threading.Barrier(2)
            result: dict = {}

            def withdraw(clip_id=clip.pk, barrier=barrier, result=result):
                barrier.wait()
                try:
                    movies.clip_withdraw(user=eve, clip_id=clip_id)
                    result["withdrawn"] = True
                except Conflict:
                    result["withdrawn"] = False
                finally:
                    connection.close()

            def claim(clip_id=clip.pk, barrier=barrier, result=result):
                barrier.wait()
                try:
                    result["claimed"] = extraction.clip_claim(clip_id, f"task-{clip_id}")
                finally:
                    connection.close()

            threads = [threading.Thread(target=withdraw), threading.Thread(target=claim)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            exists = Clip.objects.filter(pk=clip.pk).exists()
            assert result["withdrawn"] != result["claimed"], result
            assert exists == result["claimed"]
            outcomes.add("withdrawn" if result["withdrawn"] else "claimed")
        # (which one wins each round is the scheduler's choice; only "exactly one" is the rule)
        assert outcomes <= {"withdrawn", "claimed"}
