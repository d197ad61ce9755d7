from django.contrib import admin

from ml.models import BenchmarkRun


@admin.register(BenchmarkRun)
class BenchmarkRunAdmin(admin.ModelAdmin):
    list_display = (
        "protocol",
        "model",
        "loss",
        "lam",
        "target",
        "folds",
        "war_mean",
        "uar_mean",
        "status",
    )
    list_filter = ("protocol", "model", "loss", "status")
