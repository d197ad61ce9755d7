from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class LabelingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "labeling"
    verbose_name = _("Labeling")

    def ready(self) -> None:
        from labeling import jobs

        # Every background job's stale threshold above its task's hard time limit.
        checks.register(jobs.check_stale_thresholds)
