"""Production settings: `check --deploy` is clean on the documented environment, the app
refuses to start where it would only answer 500s, and beat runs as its own process."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def documented_env() -> dict[str, str]:
    """The variables of .env.example, as docker compose reads them (values before a comment)."""
    env = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(\S*)", line)
        if match:
            env[match[1]] = match[2]
    return env


def compose_services() -> dict[str, dict]:
    import yaml

    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def nginx_locations(conf: str) -> dict[str, str]:
    """Each ``location <path> { … }`` block of an nginx configuration, by path (no nesting)."""
    return dict(re.findall(r"location\s+(\S+)\s*\{([^}]*)\}", conf))


def run(args: list[str], tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in documented_env() and k != "CI"}
    clean.update(DJANGO_SETTINGS_MODULE="annotation_site.settings", **env)
    clean.update(VAR_DIR=str(tmp_path / "var"), MEDIA_ROOT=str(tmp_path / "media"))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True
    )


class DeployTests:
    def test_check_deploy_is_clean_with_the_documented_production_environment(self, tmp_path):
        env = {k: v for k, v in documented_env().items() if v}
        proc = run(
            ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            tmp_path,
            **env,
            SECRET_KEY=secrets.token_urlsafe(50),
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "System check identified no issues" in proc.stdout

    def test_check_is_clean_in_the_embedded_default(self, tmp_path):
        proc = run(["manage.py", "check", "--fail-level", "WARNING"], tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "System check identified no issues (0 silenced)" in proc.stdout

    def test_the_documented_environment_sets_every_security_setting(self, tmp_path):
        probe = (
            "import json, django; from django.conf import settings; django.setup(); "
            "print(json.dumps({n: getattr(settings, n) for n in ("
            "'SECURE_SSL_REDIRECT', 'SECURE_PROXY_SSL_HEADER', 'SECURE_HSTS_SECONDS', "
            "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'DEBUG')}))"
        )
        env = {k: v for k, v in documented_env().items() if v}
        proc = run(["-c", probe], tmp_path, **env, SECRET_KEY=secrets.token_urlsafe(50))
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == {
            "SECURE_SSL_REDIRECT": True,
            "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
            "SECURE_HSTS_SECONDS": 31536000,
            "SESSION_COOKIE_SECURE": True,
            "CSRF_COOKIE_SECURE": True,
            "DEBUG": False,
        }

    def test_the_documented_secret_key_must_be_filled_in(self, tmp_path):
        env = documented_env()
        assert env["SECRET_KEY"] == ""
        proc = run(["manage.py", "check"], tmp_path, **env)
        assert proc.returncode != 0 and "SECRET_KEY is blank" in proc.stderr

    def test_the_app_refuses_to_start_without_collectstatic_when_debug_is_off(self, tmp_path):
        proc = run(["-c", "import annotation_site.wsgi"], tmp_path, DEBUG="0")
        assert proc.returncode != 0
        assert "Run `python manage.py collectstatic --noinput` first" in proc.stderr

    def test_it_starts_once_the_manifest_is_there_or_with_debug_on(self, tmp_path):
        static = tmp_path / "var" / "static"
        static.mkdir(parents=True)
        (static / "staticfiles.json").write_text('{"paths": {}, "version": "1.1", "hash": ""}')
        proc = run(["-c", "import annotation_site.wsgi"], tmp_path, DEBUG="0")
        assert proc.returncode == 0, proc.stderr
        (static / "staticfiles.json").unlink()
        proc = run(["-c", "import annotation_site.wsgi"], tmp_path, DEBUG="1")
        assert proc.returncode == 0, proc.stderr

    def test_make_run_collects_static_files(self):
        run_target = (ROOT / "Makefile").read_text().split("\nrun: setup\n")[1].split("\n\n")[0]
        assert "manage.py collectstatic --noinput" in run_target

    def test_beat_is_its_own_process_in_procfile_dev(self):
        procs = dict(
            line.split(":", 1)
            for line in (ROOT / "Procfile.dev").read_text().splitlines()
            if line.strip()
        )
        assert "--beat" not in procs["worker"] and " -B" not in procs["worker"]
        assert re.search(r"celery -A annotation_site beat\b", procs["beat"])
        compose = "\n".join(
            line
            for line in (ROOT / "docker-compose.yml").read_text().splitlines()
            if not line.lstrip().startswith("#")
        )
        assert "worker --beat" not in compose and "celery -A annotation_site beat" in compose

    def test_gunicorn_is_never_published_and_only_nginx_is_while_forwarded_headers_count(self):
        services = compose_services()
        gunicorns = [
            name for name, svc in services.items() if "gunicorn" in str(svc.get("command"))
        ]
        assert gunicorns == ["web"]
        # gunicorn on the compose network only: a client never reaches it past nginx
        assert not services["web"].get("ports"), services["web"].get("ports")
        assert services["web"].get("network_mode") is None
        assert documented_env()["SECURE_PROXY_SSL_HEADER"] == "1"
        published = {name: svc["ports"] for name, svc in services.items() if svc.get("ports")}
        assert list(published) == ["nginx"] and services["nginx"]["image"].startswith("nginx")
        assert any(str(port).endswith(":443") for port in published["nginx"])
        assert "nginx only" in (ROOT / "README.md").read_text()

    def test_the_compose_nginx_sets_the_forwarded_headers_and_serves_checked_media_only(self):
        env = documented_env()
        nginx = compose_services()["nginx"]
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in nginx["volumes"]}
        conf_path = mounts["/etc/nginx/conf.d/default.conf"]
        conf = (ROOT / conf_path).read_text()
        assert mounts[env["MEDIA_ROOT"]] == "media"  # the volume web and the workers write
        locations = nginx_locations(conf)
        # the client's address comes from what nginx appends, the scheme from what it sets
        root = locations["/"]
        assert re.search(r"proxy_pass\s+http://\S+;", root) and "web:8000" in conf
        assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in root
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in root
        # the media Django hands over, from an internal location that keeps nosniff
        media = locations[env["MEDIA_ACCEL_REDIRECT_PREFIX"]]
        assert re.search(r"^\s*internal;", media, re.M)
        assert f"alias {env['MEDIA_ROOT'].rstrip('/')}/;" in media
        assert "X-Content-Type-Options nosniff" in media and "sandbox" in media
