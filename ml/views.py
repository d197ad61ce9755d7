from pathlib import Path

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from annotation_site.guards import staff_required
from ml.models import BenchmarkRun
from ml.results import FILES

CONTENT_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".png": "image/png",
}


def _files(run: BenchmarkRun) -> list[str]:
    """The run's files that exist in its output folder (a run trained elsewhere has none)."""
    folder = Path(run.out_dir)
    return [name for name in FILES if (folder / name).is_file()]


@staff_required
@require_GET
def benchmark_list(request):
    """Staff page: every benchmark run, newest first, with the last and the best epoch's WAR
    and UAR, its batch, and links to the files it wrote."""
    runs = list(BenchmarkRun.objects.all()[:200])
    rows = [{"run": run, "files": _files(run)} for run in runs]
    strings = {
        "counts": _(
            "%(suggested)s suggested · %(accepted)s accepted · %(dismissed)s dismissed · "
            "%(ignored)s open · precision %(precision)s"
        ),
        "not_yet": _("not yet (no accepted clip has its final label)"),
        "none": _("none"),
    }
    return render(request, "ml/benchmark_list.html", {"rows": rows, "strings": strings})


@staff_required
@require_GET
def benchmark_file(request, run_id: int, name: str):
    """One of a run's files (results.md, results.json, epochs.csv, confusion.png): only those
    names, only from the run's own output folder; 404 for anything else."""
    run = get_object_or_404(BenchmarkRun, pk=run_id)
    if name not in FILES:
        raise Http404(_("No such file of a benchmark run."))
    path = Path(run.out_dir) / name
    if not path.is_file():
        raise Http404(_("This run's file is not on this server."))
    response = FileResponse(open(path, "rb"), content_type=CONTENT_TYPES[path.suffix])
    if path.suffix in (".md", ".csv", ".json"):
        response["Content-Disposition"] = f'inline; filename="{name}"'
    return response
