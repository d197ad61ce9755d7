from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The site itself: connects the receivers that revoke API tokens."""

    name = "annotation_site"
    verbose_name = "DFER Studio site"

    def ready(self) -> None:
        # Token revocation on password change and deactivation (labeling/api/auth.py).
        pass
