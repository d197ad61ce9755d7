"""Typed readers for environment variables.

Each reader takes one variable name. A value that does not parse raises
``ImproperlyConfigured`` naming the variable, so a typo stops the app at start-up instead of
running it with a silent default. ``NAME_FILE`` (a path) is read instead of ``NAME`` when set,
which is how Docker secrets arrive.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc}") from exc
    return os.environ.get(name)


def envstr(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def envsecret(name: str, default: str = "") -> str:
    """Like envstr; a separate name so secrets are easy to find and audit."""
    return envstr(name, default)


def envsecretkey(name: str, generated: Path) -> str:
    """The secret key from ``name`` (or ``name_FILE``); unset: the one generated at ``generated``.

    A key that is set must be at least 50 characters: an empty or blank one (an env file's
    ``SECRET_KEY=``) would otherwise start the app and fail every signed cookie later.
    """
    value = _raw(name)
    if value is None:
        return generated_secret_key(generated)
    if len(value.strip()) < 50:
        state = "blank" if not value.strip() else f"{len(value.strip())} characters"
        raise ImproperlyConfigured(
            f"{name} is {state}; it must be at least 50 random characters (for example "
            "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`), or leave "
            f"{name} unset to use a key generated into {generated}."
        )
    return value


def envbool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def envint(name: str, default: int) -> int:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from exc


def envlist(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def generated_secret_key(path: Path) -> str:
    """The secret key stored at ``path``, generated there (owner-only) on first use.

    Several processes may start at once (gunicorn workers, a Celery worker): the key is written
    to a private temporary file and hard-linked into place, which fails if another process got
    there first, so every process ends up reading the same key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < 50:
        raise ImproperlyConfigured(f"{path} holds no usable secret key; delete it to regenerate.")
    return key
