"""URL routes: the REST API under /api/v1/, the dashboard at /, the admin, /healthz and /readyz."""

from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path


def healthz(request):
    """Liveness: the process is up and the trainer package imports (no dependency is asked)."""
    from trainer.models import MODELS

    return JsonResponse({"status": "ok", "models": sorted(MODELS)})


def readyz(request):
    """Readiness: the database and the broker, each reported; 503 when one is out of reach."""
    from webapp.core.health import readiness_report

    ready, report = readiness_report()
    return JsonResponse(report, status=200 if ready else 503)


urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("api/v1/", include("webapp.api.urls")),
    path("admin/", admin.site.urls),
    path("", include("webapp.dashboard.urls")),
]

# JSON under /api/, the dashboard's styled pages elsewhere (webapp.core.error_pages).
handler403 = "webapp.core.error_pages.permission_denied"
handler404 = "webapp.core.error_pages.page_not_found"
handler500 = "webapp.core.error_pages.server_error"
