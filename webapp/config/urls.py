"""URL routes. ``/healthz`` answers load balancers and the compose healthcheck."""

from django.http import JsonResponse
from django.urls import path


def healthz(request):
    """Liveness: the process is up and the trainer package imports."""
    from trainer.models import MODELS

    return JsonResponse({"status": "ok", "models": sorted(MODELS)})


urlpatterns = [path("healthz", healthz)]
