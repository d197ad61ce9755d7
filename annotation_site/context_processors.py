from django.utils.functional import SimpleLazyObject

from annotation_site.roles import Role, user_has_role


def roles(request):
    """`roles.annotator` / `roles.reviewer` in templates, queried only when a template asks."""

    def compute():
        user = getattr(request, "user", None)
        if user is None:
            return {}
        return {role.value: user_has_role(user, role) for role in Role}

    return {"roles": SimpleLazyObject(compute)}
