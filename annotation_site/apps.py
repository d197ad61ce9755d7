from django.apps import AppConfig


class SiteConfig(AppConfig):
    """The site itself: connects the receivers that revoke API tokens."""

    name = "annotation_site"
    verbose_name = "DFER Studio site"

    def ready(self) -> None:
        # Token revocation on password change and deactivation: the receiver in
        # annotation_site/auth.py connects on import, so every process (a worker, a
        # management command such as changepassword) must import it here.
        from annotation_site import auth  # noqa: F401
