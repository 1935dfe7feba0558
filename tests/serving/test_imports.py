"""serving runs where torch and Django are not installed: importing it loads neither."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

FORBIDDEN = ("torch", "django", "celery", "trainer")


def test_importing_serving_loads_no_torch_django_celery_or_trainer():
    code = (
        "import json, sys; import serving; from serving import Recommender, Registry, MicroBatcher; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert "onnxruntime" in loaded  # the test would pass vacuously if serving failed to import
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert bad == []
