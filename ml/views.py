from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotation_site.guards import staff_required
from ml.models import BenchmarkRun


@staff_required
@require_GET
def benchmark_list(request):
    """Staff page: every benchmark run, newest first, with its WAR and UAR."""
    return render(request, "ml/benchmark_list.html", {"runs": BenchmarkRun.objects.all()[:200]})
