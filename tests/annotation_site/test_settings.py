"""Settings load in a fresh interpreter per case, since Django reads them once per process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from annotation_site.env import envbool, envint, envlist, envsecret

ROOT = Path(__file__).resolve().parents[2]
KEY = "settings-test-key-0123456789abcdefghijklmnopqrstuvwxyz"
PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "db = settings.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'options': db.get('OPTIONS', {}), "
    "'broker': settings.CELERY_BROKER_URL, 'debug': settings.DEBUG, "
    "'transport': getattr(settings, 'CELERY_BROKER_TRANSPORT', None), "
    "'media': str(settings.MEDIA_ROOT), 'hosts': settings.ALLOWED_HOSTS, "
    "'cache': settings.CACHES['default']['BACKEND'], "
    "'storage': settings.STORAGES['default'], "
    "'csp': settings.CONTENT_SECURITY_POLICY['DIRECTIVES']}))"
)
VARS = (
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "DATABASE_URL",
    "REDIS_URL",
    "MEDIA_ROOT",
    "ALLOWED_HOSTS",
    "CI",
    "MEDIA_STORAGE",
    "AWS_STORAGE_BUCKET_NAME",
    "AWS_S3_ENDPOINT_URL",
    "MEDIA_ORIGIN",
)


def load_settings(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in VARS}
    clean.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="annotation_site.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )


class SettingsTests:
    def test_it_refuses_to_start_with_debug_off_on_a_known_development_key(self, tmp_path):
        proc = load_settings(tmp_path, SECRET_KEY="django-insecure-" + "a1b2c3d4e5" * 5)
        assert proc.returncode != 0
        assert "SECRET_KEY is a known development key and DEBUG is off" in proc.stderr

    @pytest.mark.parametrize("key", ["", "   ", "s3cret", "x" * 49])
    @pytest.mark.parametrize("debug", ["0", "1"])
    def test_it_refuses_a_secret_key_that_is_empty_blank_or_short(self, tmp_path, key, debug):
        proc = load_settings(tmp_path, SECRET_KEY=key, DEBUG=debug)
        assert proc.returncode != 0
        assert "SECRET_KEY is" in proc.stderr and "at least 50" in proc.stderr

    def test_it_refuses_a_short_key_from_a_docker_secret_naming_the_variable(self, tmp_path):
        secret = tmp_path / "key"
        secret.write_text("short\n")
        proc = load_settings(tmp_path, SECRET_KEY_FILE=str(secret))
        assert proc.returncode != 0 and "SECRET_KEY is 5 characters" in proc.stderr

    def test_with_no_key_set_it_generates_one_once_owner_only_and_reuses_it(self, tmp_path):
        probe = "import django; from django.conf import settings; print(settings.SECRET_KEY)"
        clean = {k: v for k, v in os.environ.items() if k not in VARS}
        clean.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="annotation_site.settings")
        keys = []
        for _ in range(2):
            proc = subprocess.run(
                [sys.executable, "-c", probe], cwd=ROOT, env=clean, capture_output=True, text=True
            )
            assert proc.returncode == 0, proc.stderr
            keys.append(proc.stdout.strip())
        stored = tmp_path / "secret_key"
        assert keys[0] == keys[1] == stored.read_text().strip()
        assert len(keys[0]) >= 50
        assert stored.stat().st_mode & 0o777 == 0o600

    def test_a_management_command_runs_on_a_fresh_checkout_with_no_environment(self, tmp_path):
        clean = {k: v for k, v in os.environ.items() if k not in VARS}
        clean.update(VAR_DIR=str(tmp_path))
        clean.pop("DJANGO_SETTINGS_MODULE", None)
        proc = subprocess.run(
            [sys.executable, "manage.py", "train_benchmark", "--help"],
            cwd=ROOT,
            env=clean,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert "--model" in proc.stdout

    def test_the_embedded_default_is_sqlite_immediate_and_a_filesystem_broker(self, tmp_path):
        proc = load_settings(tmp_path, SECRET_KEY=KEY)
        assert proc.returncode == 0, proc.stderr
        loaded = json.loads(proc.stdout)
        # Django's SQLite backend, its writers queued on a file lock (test_sqlite_backend.py)
        assert loaded["engine"] == "annotation_site.sqlite3"
        # Throttle counts shared by every process, with no server.
        assert loaded["cache"] == "django.core.cache.backends.filebased.FileBasedCache"
        assert loaded["options"]["transaction_mode"] == "IMMEDIATE"
        assert loaded["broker"] == "filesystem://"
        assert loaded["transport"] == "annotation_site.broker:Transport"  # atomic writes
        assert loaded["debug"] is False

    def test_urls_switch_to_postgres_and_redis(self, tmp_path):
        proc = load_settings(
            tmp_path,
            DEBUG="1",
            DATABASE_URL="postgres://u:p@db:5432/dfer",
            REDIS_URL="redis://cache:6379/0",
            MEDIA_ROOT="/srv/media",
            ALLOWED_HOSTS="dfer.example.org, localhost",
        )
        assert proc.returncode == 0, proc.stderr
        loaded = json.loads(proc.stdout)
        assert loaded["engine"] == "django.db.backends.postgresql"
        assert loaded["broker"] == "redis://cache:6379/0"
        assert loaded["transport"] is None
        assert loaded["cache"] == "django.core.cache.backends.redis.RedisCache"
        assert loaded["media"] == "/srv/media"
        assert loaded["hosts"] == ["dfer.example.org", "localhost"]

    def test_media_is_on_the_local_disk_unless_media_storage_says_s3(self, tmp_path):
        proc = load_settings(tmp_path, SECRET_KEY=KEY)
        assert proc.returncode == 0, proc.stderr
        storage = json.loads(proc.stdout)["storage"]
        assert storage == {"BACKEND": "django.core.files.storage.FileSystemStorage"}

    def test_s3_media_storage_selects_django_storages_with_the_bucket(self, tmp_path):
        # Settings name the backend without importing it: this runs without the s3 extra.
        proc = load_settings(
            tmp_path,
            SECRET_KEY=KEY,
            MEDIA_STORAGE="s3",
            AWS_STORAGE_BUCKET_NAME="dfer-media",
            AWS_S3_ENDPOINT_URL="https://minio.example.org",
        )
        assert proc.returncode == 0, proc.stderr
        storage = json.loads(proc.stdout)["storage"]
        assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
        options = storage["OPTIONS"]
        assert options["bucket_name"] == "dfer-media"
        assert options["endpoint_url"] == "https://minio.example.org"
        # private objects, reached only through presigned URLs after the permission check
        assert options["querystring_auth"] is True and options["default_acl"] is None

    def test_pages_may_load_media_from_the_bucket_and_only_from_there(self, tmp_path):
        # Clips play from presigned URLs: the CSP's media-src and img-src name the bucket's
        # origin (the endpoint's, AWS's hosts without one, or MEDIA_ORIGIN), nothing else.
        def csp(**env):
            proc = load_settings(tmp_path, SECRET_KEY=KEY, **env)
            assert proc.returncode == 0, proc.stderr
            directives = json.loads(proc.stdout)["csp"]
            return directives["media-src"], directives["img-src"]

        assert csp() == (["'self'"], ["'self'", "data:"])
        s3 = {"MEDIA_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "dfer-media"}
        minio = "https://minio.example.org:9000"
        assert csp(**s3, AWS_S3_ENDPOINT_URL=f"{minio}/ignored/path") == (
            ["'self'", minio],
            ["'self'", "data:", minio],
        )
        assert csp(**s3)[0] == ["'self'", "https://*.amazonaws.com"]
        cdn = "https://media.dfer.example.org"
        assert csp(**s3, AWS_S3_ENDPOINT_URL=minio, MEDIA_ORIGIN=cdn)[0] == ["'self'", cdn]

    def test_s3_media_storage_without_a_bucket_is_refused_naming_the_variable(self, tmp_path):
        proc = load_settings(tmp_path, SECRET_KEY=KEY, MEDIA_STORAGE="s3")
        assert proc.returncode != 0
        assert "MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME" in proc.stderr

    def test_an_unknown_media_storage_is_refused_by_name(self, tmp_path):
        proc = load_settings(tmp_path, SECRET_KEY=KEY, MEDIA_STORAGE="gcs")
        assert proc.returncode != 0
        assert "MEDIA_STORAGE must be local or s3, not 'gcs'" in proc.stderr

    def test_it_names_the_variable_with_a_bad_value(self, tmp_path):
        proc = load_settings(tmp_path, DEBUG="maybe")
        assert proc.returncode != 0 and "DEBUG='maybe' is not a boolean" in proc.stderr


class EnvReaderTests:
    def test_it_parses_booleans_integers_and_lists(self, monkeypatch):
        monkeypatch.setenv("X_BOOL", "yes")
        monkeypatch.setenv("X_INT", "42")
        monkeypatch.setenv("X_LIST", "a, b,,c")
        assert envbool("X_BOOL", False) is True
        assert envint("X_INT", 0) == 42
        assert envlist("X_LIST", []) == ["a", "b", "c"]
        assert envint("X_MISSING", 7) == 7

    def test_it_rejects_a_bad_integer(self, monkeypatch):
        monkeypatch.setenv("X_INT", "ten")
        with pytest.raises(ImproperlyConfigured, match="X_INT='ten' is not an integer"):
            envint("X_INT", 0)

    def test_it_reads_docker_secrets_from_name_file(self, monkeypatch, tmp_path):
        secret = tmp_path / "secret"
        secret.write_text("from-a-file\n")
        monkeypatch.setenv("X_SECRET_FILE", str(secret))
        monkeypatch.setenv("X_SECRET", "from-env")
        assert envsecret("X_SECRET") == "from-a-file"


class SharedCacheTests:
    def test_the_embedded_cache_is_shared_between_processes(self, tmp_path):
        """Throttle counts live in the cache: every web process must see the same counts."""
        clean = {k: v for k, v in os.environ.items() if k not in VARS}
        clean.update(
            VAR_DIR=str(tmp_path), SECRET_KEY=KEY, DJANGO_SETTINGS_MODULE="annotation_site.settings"
        )
        outputs = []
        for code in ("cache.set('hits', 7, 60)", "print(cache.get('hits'))"):
            proc = subprocess.run(
                [sys.executable, "-c", f"from django.core.cache import cache; {code}"],
                cwd=ROOT,
                env=clean,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, proc.stderr
            outputs.append(proc.stdout.strip())
        assert outputs == ["", "7"]
