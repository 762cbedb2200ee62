"""URL wiring."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from api.metrics import metrics_view


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness without the database: also the framework's floor in bench/gateway.py."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
]
