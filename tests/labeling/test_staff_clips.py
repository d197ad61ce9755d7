"""The staff clip page (video, face crops, votes with who and when, the result, the report's
flags), the clip browser's filters and keyset pages, and the agreement report's links."""

from __future__ import annotations

import re

import pytest

from labeling.loop import services
from labeling.models import Annotation, Clip, ClipReport
from labeling.results import aggregation, agreement
from tests.conftest import PASSWORD, make_clips, make_user

# Clip 1: 7 happy, 3 sad (a single label at 7 of 10); clip 2: 5 and 5 (no single label);
# clip 3: not labelled.
VOTES = {1: ["happy"] * 7 + ["sad"] * 3, 2: ["happy"] * 5 + ["sad"] * 5}


@pytest.fixture
def labelled(campaign, annotators):
    clips = make_clips(campaign, 3)
    given = {number: list(votes) for number, votes in VOTES.items()}
    for user in annotators:
        for _ in range(2):
            lease = services.assignment_next(user=user)
            label = given[lease.clip.number].pop()
            services.annotation_submit(user=user, assignment_id=lease.pk, label_name=label)
    aggregation.clips_aggregate([c.pk for c in clips])
    report = agreement.agreement_report_request(campaign=campaign)
    assert agreement.agreement_report_run(report.pk)
    return {c.number: Clip.objects.get(pk=c.pk) for c in clips}


@pytest.fixture
def staff(client, db):
    make_user("boss", staff=True)
    assert client.login(username="boss", password=PASSWORD)
    return client


def flat(response) -> str:
    return re.sub(r">\s+<", "><", re.sub(r"\s+", " ", response.content.decode()))


def numbers(response) -> list[int]:
    return [int(n) for n in re.findall(r'href="/staff/clips/\d+/">(\d{5})<', flat(response))]


@pytest.mark.django_db
class ClipPageTests:
    def test_it_shows_video_crops_votes_with_who_and_when_result_and_flags(self, staff, labelled):
        clip = labelled[1]
        Clip.objects.filter(pk=clip.pk).update(
            faces=f"faces/{clip.pk}.jpg", face_ratio=0.27, few_faces=True
        )
        vote = Annotation.objects.filter(clip=clip).select_related("annotator").first()
        ClipReport.objects.create(clip=clip, reporter=vote.annotator, kind="broken")
        page = flat(staff.get(f"/staff/clips/{clip.pk}/"))
        assert f'src="/media/{clip.video.name}"' in page
        assert f'src="/media/faces/{clip.pk}.jpg"' in page
        assert "A face was found in 0.27 of the frames." in page
        assert "Votes <small>(10)</small>" in page
        when = vote.created_at.strftime("%Y-%m-%d %H:%M:%S")
        assert f"<td>{vote.annotator.username}</td><td>{vote.label.display_name}</td>" in page
        assert f"<td>{when}</td>" in page
        assert "Single label: Happy" in page
        assert "<tr><td>Happy</td><td>7</td><td>0.70</td></tr>" in page
        assert "few faces found; reported by an annotator" in page
        assert "lowest agreement in the latest report" in page

    def test_the_reports_lowest_clips_link_here_not_to_the_admin(self, staff, campaign, labelled):
        page = staff.get(f"/staff/campaigns/{campaign.pk}/agreement/").content.decode()
        lowest = page[page.index('id="lowest"') :]
        assert f'href="/staff/clips/{labelled[2].pk}/"' in lowest
        assert "/admin/labeling/clip/" not in lowest


@pytest.mark.django_db
class ClipBrowserTests:
    def test_each_filter_narrows_the_list(self, staff, campaign, labelled):
        ed = make_user("ed")
        Clip.objects.filter(pk=labelled[3].pk).update(proposed_by=ed, few_faces=True)
        ClipReport.objects.create(clip=labelled[2], reporter=ed, kind="broken")
        other_movie = make_clips(campaign, 2, start_number=10)[0].movie_id
        base = f"/staff/clips/?campaign={campaign.pk}"
        expect = {
            "": [1, 2, 3, 10, 11],
            "&status=complete": [1, 2],
            "&agreement=single": [1],
            "&agreement=split": [2],
            "&agreement=pending": [3, 10, 11],
            "&label=happy": [1],
            "&label=sad": [],
            f"&movie={other_movie}": [10, 11],
            "&movie_title=ovi": [1, 2, 3, 10, 11],
            "&movie_title=nothing+like+it": [],
            "&extractor=ed": [3],
            "&flag=few_faces": [3],
            "&flag=reported": [2],
            "&flag=lowest&status=complete": [1, 2],
            "&status=bogus&flag=bogus": [1, 2, 3, 10, 11],
        }
        for query, wanted in expect.items():
            response = staff.get(base + query)
            assert response.status_code == 200
            assert numbers(response) == wanted, query
        assert "No clip matches these filters." in staff.get(base + "&label=sad").content.decode()

    def test_keyset_pages_cover_every_clip_once(self, staff, campaign):
        make_clips(campaign, 123)
        seen, url = [], f"/staff/clips/?campaign={campaign.pk}&status=annotating"
        for _ in range(5):
            response = staff.get(url)
            seen += numbers(response)
            found = re.search(r'href="\?([^"]+)" id="next-page"', response.content.decode())
            if not found:
                break
            url = "/staff/clips/?" + found.group(1).replace("&amp;", "&")
        assert seen == list(range(1, 124))
        assert "status=annotating" in url and "after=" in url

    def test_an_empty_site_says_where_clips_come_from(self, staff, campaign):
        page = staff.get("/staff/clips/").content.decode()
        assert "No clips yet. Extractors mark them on the Mark clips page" in page
