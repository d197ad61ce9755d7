"""The staff page of benchmark runs: the protocol as recorded ("dfew, modified: …"), the batch,
the last and the best epoch, and links to the files the run wrote, served to staff only."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client

from ml.models import BenchmarkRun
from pipeline.synthetic import generate_dataset
from tests.conftest import PASSWORD, chromium_paths, need

ABSENT = pytest.mark.filterwarnings("ignore::ml.metrics.AbsentClassWarning")


@pytest.fixture
def trained_run(tmp_path, tiny_model, db):
    """A real run of train_benchmark: 70 drawn-face clips, fold 1, two epochs."""
    data = generate_dataset(
        tmp_path / "few", 10, 1, frames=4, size=24, max_frames=8, progress=False
    )
    call_command(
        "train_benchmark",
        data=str(data),
        out=str(tmp_path / "run"),
        model="tiny",
        folds="1",
        epochs=2,
        global_batch="yaml",
        batch_size=8,
        frames=4,
        input_size=24,
        workers=0,
        no_progress=True,
    )
    return BenchmarkRun.objects.get()


def staff_client(admin_user) -> Client:
    client = Client()
    assert client.login(username=admin_user.username, password=PASSWORD)
    return client


@ABSENT
class BenchmarkPageTests:
    def test_it_shows_the_label_batch_last_and_best_and_links_the_files(
        self, trained_run, admin_user
    ):
        html = staff_client(admin_user).get("/staff/benchmarks/").content.decode()
        assert "dfew, modified: global batch 32 (not 256); epochs 2 (not 100)" in html
        assert "32 = 1 × 32 (4 steps accumulated)" in html
        run = trained_run
        assert f"{run.war_mean:.2f} ± {run.war_std:.2f}" in html
        assert f"{run.best_war_mean:.2f} ± {run.best_war_std:.2f}" in html
        assert "Best WAR" in html and "Last WAR" in html
        for name in ("results.md", "results.json", "epochs.csv", "confusion.png"):
            assert f'href="/staff/benchmarks/{run.pk}/files/{name}"' in html

    def test_staff_read_the_files_and_nothing_else(self, trained_run, admin_user, tmp_path):
        client = staff_client(admin_user)
        base = f"/staff/benchmarks/{trained_run.pk}/files"
        md = client.get(f"{base}/results.md")
        assert md.status_code == 200 and md["Content-Type"].startswith("text/markdown")
        text = b"".join(md.streaming_content).decode()
        assert "**Best epoch**, best on the test fold" in text
        csv = b"".join(client.get(f"{base}/epochs.csv").streaming_content).decode()
        assert csv.splitlines()[0] == "fold,epoch,loss,lr,optimizer_steps,test_war,test_uar"
        assert client.get(f"{base}/confusion.png")["Content-Type"] == "image/png"
        (tmp_path / "run" / "secret.txt").write_text("no")
        assert client.get(f"{base}/secret.txt").status_code == 404
        assert client.get(f"{base}/..%2Fsecret.txt").status_code == 404
        assert (
            client.get(f"/staff/benchmarks/{trained_run.pk + 1}/files/results.md").status_code
            == 404
        )
        assert client.post(f"{base}/results.md").status_code == 405

    def test_annotators_and_strangers_get_no_file(self, trained_run, alice):
        url = f"/staff/benchmarks/{trained_run.pk}/files/results.md"
        assert Client().get(url).status_code == 302  # to the login page
        client = Client()
        assert client.login(username="alice", password=PASSWORD)
        assert client.get(url).status_code == 403


@pytest.fixture
def browser(tmp_path):
    chromium, chromedriver = chromium_paths()
    need(bool(chromium and chromedriver), "needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()


@ABSENT
@pytest.mark.django_db(transaction=True)
class BenchmarkPageBrowserTests:
    def test_on_a_phone_staff_scroll_to_a_runs_file_and_open_it(
        self, browser, live_server, trained_run, admin_user
    ):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(browser, 20)
        browser.set_window_size(390, 844)
        browser.get(f"{live_server.url}/accounts/login/?next=/staff/benchmarks/")
        browser.find_element(By.NAME, "username").send_keys(admin_user.username)
        browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
        link = wait.until(ec.presence_of_element_located((By.LINK_TEXT, "results.md")))
        # the table scrolls inside its own box, which stays within the phone's width (the
        # site's navigation bar is base.html's, not this page's)
        box = browser.find_element(By.ID, "runs")
        right = browser.execute_script("return arguments[0].getBoundingClientRect().right", box)
        assert right <= 390
        assert box.get_property("scrollWidth") > box.get_property("clientWidth")
        browser.execute_script("arguments[0].scrollIntoView({inline: 'center'})", link)
        link.click()
        wait.until(lambda b: "results.md" in b.current_url)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "global batch 32 = 1 process(es) × 32 per process" in body
        assert "Best epoch" in body and "Last epoch" in body


@pytest.mark.django_db(transaction=True)
class RunSuggestionsBrowserTests:
    def test_each_run_shows_its_suggestions_and_their_precision(
        self, browser, live_server, campaign, admin_user, tmp_path
    ):
        """Issue 24: the runs page reads the labeling side's suggestion counts over the REST
        API (ml never reads labeling's tables): suggested, accepted, dismissed, open, and
        the precision once an accepted clip has its final label."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support.ui import WebDriverWait

        from labeling.media import suggestions
        from labeling.models import Role
        from tests.conftest import make_user
        from tests.labeling.test_movies import ready_movie
        from tests.labeling.test_suggestions import _result, probs

        # given: run A suggested three segments (one accepted, its clip labelled disgust as
        # suggested; one dismissed; one open); run B suggested nothing
        scored, idle = (
            BenchmarkRun.objects.create(
                model="tiny", loss="ce", data="", out_dir=str(tmp_path / n), folds="1", epochs=1
            )
            for n in "ab"
        )
        eve = make_user("eve", Role.EXTRACTOR)
        campaign.annotators.add(eve, through_defaults={"role": Role.EXTRACTOR})
        movie = ready_movie(campaign, tmp_path)
        added = suggestions.suggestions_add(
            user=eve,
            movie_id=movie.pk,
            run=str(scored.pk),
            segments=[
                suggestions.SuggestedSegment(a, a + 0.8, probs(disgust=0.9))
                for a in (0.0, 1.0, 2.0)
            ],
        )
        first, second, _ = added.suggestions
        _result(suggestions.suggestion_accept(user=eve, suggestion_id=first.pk).clip, "disgust")
        suggestions.suggestion_dismiss(user=eve, suggestion_id=second.pk)
        # when: staff open the runs page
        wait = WebDriverWait(browser, 20)
        browser.get(f"{live_server.url}/accounts/login/?next=/staff/benchmarks/")
        browser.find_element(By.NAME, "username").send_keys(admin_user.username)
        browser.find_element(By.NAME, "password").send_keys(PASSWORD + Keys.ENTER)
        # then
        cell = f'td.run-suggestions[data-run="{scored.pk}"]'
        wait.until(lambda b: "suggested" in b.find_element(By.CSS_SELECTOR, cell).text)
        assert browser.find_element(By.CSS_SELECTOR, cell).text == (
            "3 suggested · 1 accepted · 1 dismissed · 1 open · precision 100.0 %"
        )
        other = browser.find_element(By.CSS_SELECTOR, f'td.run-suggestions[data-run="{idle.pk}"]')
        assert other.text == "none"
