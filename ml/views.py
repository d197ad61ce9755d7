from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ml.models import BenchmarkRun


@login_required
@require_GET
def benchmark_list(request):
    """Staff page: every benchmark run, newest first, with its WAR and UAR."""
    if not request.user.is_staff:
        raise PermissionDenied("Staff only.")
    return render(request, "ml/benchmark_list.html", {"runs": BenchmarkRun.objects.all()[:200]})
