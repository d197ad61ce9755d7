"""python manage.py faces_preview MOVIE --start-s A --end-s B --csv OUT.csv [--png OUT.png]
[--target X,Y] [--detector NAME] [--max-height 720] [--detect-every 5]"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipeline import face_preview
from pipeline.faces import DETECTORS, make_detector
from pipeline.media import MediaError


def point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise CommandError(f"--target takes X,Y in the movie's pixels, not {text!r}") from None
    return x, y


class Command(BaseCommand):
    help = (
        "Runs the extraction's face detector and tracker over a span of a movie and writes the "
        "target's box per frame of the span (frame 0 = the span's first frame) in the movie's "
        "pixels: frame,x,y,w,h,score, x to score empty for no face; --png draws the boxes on "
        "a contact sheet. For trying the settings (FACE_DETECTOR, FACE_HOLD_SECONDS) on a film."
    )

    def add_arguments(self, parser):
        parser.add_argument("movie", help="a video file")
        parser.add_argument("--start-s", type=float, required=True)
        parser.add_argument("--end-s", type=float, required=True)
        parser.add_argument("--csv", required=True, help="where to write the boxes")
        parser.add_argument("--png", help="where to write the contact sheet")
        parser.add_argument("--target", help="X,Y: a point on the face to follow")
        parser.add_argument("--detector", choices=sorted(DETECTORS), help="default: FACE_DETECTOR")
        parser.add_argument("--max-height", type=int, default=720, help="as the campaign's")
        parser.add_argument("--detect-every", type=int, default=5)

    def handle(self, *args, movie, start_s, end_s, csv, png, target, **options):
        name = options["detector"] or settings.FACE_DETECTOR
        if options["max_height"] < 16 or options["detect_every"] < 1:
            raise CommandError("--max-height must be at least 16 and --detect-every at least 1")
        try:
            detector = make_detector(name)
        except ImportError as exc:
            raise CommandError(f"the {name} detector is not installed ({exc})") from None
        try:
            preview = face_preview.preview_faces(
                movie,
                start_s,
                end_s,
                detector=detector,
                target=None if target is None else point(target),
                max_height=options["max_height"],
                detect_every=options["detect_every"],
                hold_s=settings.FACE_HOLD_SECONDS,
            )
        except (ValueError, MediaError) as exc:
            raise CommandError(str(exc)) from None
        face_preview.write_csv(preview, csv)
        found = sum(d is not None for d in preview.detections)
        self.stdout.write(
            f"{preview.n_frames} frames from frame {preview.first_frame}: a face on {found}, "
            f"a second face on {preview.second_face_frames} examined frames ({name}); {csv}"
        )
        if png:
            face_preview.write_sheet(preview, png)
            self.stdout.write(f"contact sheet: {png}")
