"""Settings and deployment files: production checks, broker choice, docker-compose.yml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from webapp.config.settings.base import choose_broker

REPO = Path(__file__).resolve().parents[3]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy(tmp_path):
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_SETTINGS_MODULE="webapp.config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-key-" + "k" * 40,
        DJANGO_ALLOWED_HOSTS="studio.example.com",
        DJANGO_VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL="redis://redis:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def _production_broker(tmp_path, **env: str) -> subprocess.CompletedProcess:
    code = (
        "from django.conf import settings; "
        "print(settings.CELERY_BROKER_URL); print(settings.CACHES['default']['BACKEND'])"
    )
    return _manage(
        "shell",
        "-c",
        code,
        DJANGO_SETTINGS_MODULE="webapp.config.settings.production",
        DJANGO_SECRET_KEY="a-long-random-production-key-" + "k" * 40,
        DJANGO_ALLOWED_HOSTS="studio.example.com",
        DJANGO_VAR_DIR=str(tmp_path),
        **{"CELERY_BROKER_URL": "", "REDIS_URL": "", **env},
    )


def test_production_keeps_its_broker_when_redis_is_away_and_refuses_to_start_without_one(tmp_path):
    away = _production_broker(tmp_path, CELERY_BROKER_URL="redis://127.0.0.1:1/0")  # nothing listens
    assert away.returncode == 0, away.stderr
    assert away.stdout.split()[-2:] == [
        "redis://127.0.0.1:1/0",
        "django.core.cache.backends.redis.RedisCache",
    ]
    missing = _production_broker(tmp_path)
    assert missing.returncode != 0
    assert "Set CELERY_BROKER_URL (or REDIS_URL): production needs its broker" in missing.stderr


def test_production_settings_refuse_to_start_without_a_secret_key(tmp_path):
    result = _manage(
        "check", DJANGO_SETTINGS_MODULE="webapp.config.settings.production", DJANGO_VAR_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    assert "Set the DJANGO_SECRET_KEY environment variable" in result.stderr


def test_broker_is_redis_when_reachable_else_embedded(tmp_path, monkeypatch):
    embedded = tmp_path / "broker.sqlite3"
    assert choose_broker(None, embedded) == f"sqla+sqlite:///{embedded}"
    assert choose_broker("redis://127.0.0.1:1/0", embedded) == f"sqla+sqlite:///{embedded}"  # nothing listens
    monkeypatch.setattr("webapp.config.settings.base.redis_reachable", lambda url, timeout=0.5: True)
    assert choose_broker("redis://redis:6379/0", embedded) == "redis://redis:6379/0"
    assert choose_broker("sqla+sqlite:////x.db", embedded) == "sqla+sqlite:////x.db"


def test_compose_file_has_the_services_the_issue_asks_for():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"web", "worker", "worker-gpu", "redis", "postgres", "minio", "minio-init"}
    # Every long-running service says when it is healthy; minio-init makes the bucket and exits.
    assert all("healthcheck" in service for name, service in services.items() if name != "minio-init")
    assert services["minio-init"]["restart"] == "no"
    assert set(compose["volumes"]) == {"media", "redis-data", "postgres-data", "minio-data"}
    # The object store runs only when asked for: the default stays one host on the media volume.
    assert services["minio"]["profiles"] == services["minio-init"]["profiles"] == ["objectstore"]
    assert not any(
        "profiles" in services[name] for name in ("web", "worker", "worker-gpu", "redis", "postgres")
    )
    gpu = services["worker-gpu"]
    assert "-Q gpu --pool solo --concurrency 1" in gpu["command"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "-Q default" in services["worker"]["command"]
    assert "gunicorn -c webapp/config/gunicorn.py webapp.config.wsgi" in services["web"]["command"]
    assert services["web"]["environment"]["DJANGO_SETTINGS_MODULE"] == "webapp.config.settings.production"


def test_the_remote_gpu_worker_file_starts_only_that_worker_with_the_same_command():
    remote = yaml.safe_load((REPO / "docker-compose.gpu-worker.yml").read_text())
    local = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["worker-gpu"]
    assert set(remote["services"]) == {"worker-gpu"}
    worker = remote["services"]["worker-gpu"]
    assert worker["command"] == local["command"]
    assert worker["deploy"] == local["deploy"] and worker["healthcheck"] == local["healthcheck"]
    environment = worker["environment"]
    # Nothing it needs may fall back to a local default on the other host: each is required.
    for name in ("DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_STORAGE_URL"):
        assert environment[name].startswith(f"${{{name}:?"), name


def test_a_dot_env_made_from_the_example_cannot_move_the_images_paths_inside_the_containers():
    """compose passes .env to every service (env_file), and its values override the image's ENV;
    only compose's own ``environment`` overrides .env. So every path the Dockerfile sets is set
    again by compose, and the example sets no path for a local run that a copy would carry in."""
    import re

    image = dict(re.findall(r"^\s+(DJANGO_\w+|TRAINER_\w+)=(\S+)", (REPO / "Dockerfile").read_text(), re.M))
    paths = {name: value for name, value in image.items() if value.startswith("/")}
    assert {"DJANGO_STATIC_ROOT", "DJANGO_VAR_DIR", "DJANGO_MEDIA_ROOT", "TRAINER_DATA_DIR"} <= set(paths)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    remote = yaml.safe_load((REPO / "docker-compose.gpu-worker.yml").read_text())
    for name, service in [
        *((n, compose["services"][n]) for n in ("web", "worker", "worker-gpu")),
        ("remote worker-gpu", remote["services"]["worker-gpu"]),
    ]:
        environment = service["environment"]
        assert {k: environment.get(k) for k in paths} == paths, name
    example = (REPO / ".env.example").read_text()
    set_there = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, re.M))
    assert not set_there & {*paths, "CELERY_EMBEDDED_BROKER_PATH"}, sorted(set_there & {*paths})


def test_env_example_lists_every_variable_the_code_reads():
    import re

    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.M))
    pattern = re.compile(r'env\.\w+\("([A-Z0-9_]+)"|environ\.get\("([A-Z0-9_]+)"')
    read = {a or b for path in (REPO / "webapp").rglob("*.py") for a, b in pattern.findall(path.read_text())}
    assert read and read <= listed, sorted(read - listed)


def _compose_client() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def _compose_config(client: list[str], folder: Path, env: dict[str, str], *args: str):
    return subprocess.run(
        [*client, *args, "config", "-q"], cwd=folder, env=env, capture_output=True, text=True
    )


def test_compose_config_validates(tmp_path):
    """``docker compose config`` (no engine needed) where a Compose client is installed, for the
    default services, the object store profile and the remote GPU worker's file."""
    client = _compose_client()
    if client is None:
        pytest.skip("no Compose client (install Debian's docker-compose to validate the file)")
    for name in ("docker-compose.yml", "docker-compose.gpu-worker.yml"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    env = {**base, "DJANGO_SECRET_KEY": "compose-check", "POSTGRES_PASSWORD": "compose-check"}
    result = _compose_config(client, tmp_path, env)
    assert result.returncode == 0, result.stderr
    profile = _compose_config(client, tmp_path, env, "--profile", "objectstore")
    assert profile.returncode == 0, profile.stderr
    without_key = {k: v for k, v in env.items() if k != "DJANGO_SECRET_KEY"}
    missing = _compose_config(client, tmp_path, without_key)
    assert missing.returncode != 0 and "DJANGO_SECRET_KEY" in missing.stderr

    remote = {
        **env,
        "DATABASE_URL": "postgres://studio:secret@db.internal:5432/studio",
        "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
        "DJANGO_STORAGE_URL": "s3://studio/prod",
    }
    gpu = ("-f", "docker-compose.gpu-worker.yml")
    result = _compose_config(client, tmp_path, remote, *gpu)
    assert result.returncode == 0, result.stderr
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_STORAGE_URL"):
        missing = _compose_config(client, tmp_path, {k: v for k, v in remote.items() if k != name}, *gpu)
        assert missing.returncode != 0 and name in missing.stderr, name
