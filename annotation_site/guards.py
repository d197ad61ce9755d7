"""The one guard of every page of the project: log in first, then 403 with a reason.

`labeling` and `ml` pages both use it (`ml` imports nothing of `labeling`); the 403 page
(`annotation_site/templates/403.html`) shows the reason and a way back.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied


def page_guard(allowed, refusal: str):
    """A page decorator: log in first, then 403 with ``refusal`` unless ``allowed(user)``."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapper(request, *args, **kwargs):
            if not allowed(request.user):
                raise PermissionDenied(refusal)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


staff_required = page_guard(lambda user: user.is_staff, "Staff only.")
