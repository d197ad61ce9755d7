import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")

application = get_wsgi_application()


def require_static_manifest() -> None:
    """Refuses to serve when the static files' manifest is missing.

    With DEBUG off, static files are served by name from the hashed manifest that
    ``collectstatic`` writes; without it every page answers 500 ("Missing staticfiles manifest
    entry"). Better not to start, saying what to run.
    """
    from django.conf import settings
    from django.contrib.staticfiles.storage import staticfiles_storage

    manifest = getattr(staticfiles_storage, "manifest_name", None)
    if manifest and not staticfiles_storage.exists(manifest):
        raise ImproperlyConfigured(
            f"No static files manifest in STATIC_ROOT ({settings.STATIC_ROOT}); with DEBUG off "
            "the pages need it. Run `python manage.py collectstatic --noinput` first."
        )


require_static_manifest()
