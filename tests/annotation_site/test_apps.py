"""The site's AppConfig connects its receivers in every process, not only in one that happens
to import the API first (a fresh interpreter, since Django sets up once per process)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django; django.setup(); "
    "from django.contrib.auth import get_user_model; "
    "from django.db.models.signals import pre_save; "
    "print(pre_save.has_listeners(get_user_model()))"
)


def test_setup_alone_connects_the_token_revocation_receiver():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "annotation_site.settings"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
