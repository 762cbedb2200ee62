"""API routes, versioned under /api/v1/, and the OpenAPI schema."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.gateway import views as gateway
from api.health import HealthApi

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("v1/health", HealthApi.as_view(), name="health"),
    path("v1/authorizations", gateway.AuthorizationCreateApi.as_view(), name="authorizations"),
    path("v1/usage", gateway.UsageCreateApi.as_view(), name="usage"),
    path("v1/balance", gateway.BalanceApi.as_view(), name="balance"),
    path(
        "v1/authorizations/<str:authorization_id>",
        gateway.AuthorizationDetailApi.as_view(),
        name="authorization",
    ),
    path(
        "v1/authorizations/<str:authorization_id>/settle",
        gateway.AuthorizationSettleApi.as_view(),
        name="authorization-settle",
    ),
    path(
        "v1/authorizations/<str:authorization_id>/void",
        gateway.AuthorizationVoidApi.as_view(),
        name="authorization-void",
    ),
]
