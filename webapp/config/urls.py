"""URL routes: the REST API under /api/v1/, the dashboard at /, the admin, and /healthz."""

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path


def healthz(request):
    """Liveness: the process is up and the trainer package imports."""
    from trainer.models import MODELS

    return JsonResponse({"status": "ok", "models": sorted(MODELS)})


urlpatterns = [
    path("healthz", healthz),
    path("api/v1/", include("webapp.api.urls")),
    path("admin/", admin.site.urls),
    path("", include("webapp.dashboard.urls")),
]
