"""API routes, versioned under /api/v1/, and the OpenAPI schema."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api.errors import api_not_found
from api.finance import alerts, calendar, reports
from api.finance import views as books
from api.gateway import views as gateway
from api.health import HealthApi


class IdConverter:
    """A database id in a path: 1 to 18 digits, so that any match fits a bigint on every
    backend (a longer number is simply not found, never an overflow)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

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
    # People: the books, scoped by role (docs/api.md).
    path("v1/organizations", books.OrganizationListApi.as_view(), name="organizations"),
    path("v1/organizations/<id:pk>", books.OrganizationDetailApi.as_view(), name="organization"),
    path("v1/teams", books.TeamListApi.as_view(), name="teams"),
    path("v1/teams/<id:pk>", books.TeamDetailApi.as_view(), name="team"),
    path("v1/members", books.MemberListApi.as_view(), name="members"),
    path("v1/members/<id:pk>", books.MemberDetailApi.as_view(), name="member"),
    path("v1/periods", books.PeriodListApi.as_view(), name="periods"),
    path("v1/periods/<id:pk>", books.PeriodDetailApi.as_view(), name="period"),
    path("v1/pools", books.PoolListApi.as_view(), name="pools"),
    path("v1/pools/<id:pk>", books.PoolDetailApi.as_view(), name="pool"),
    path("v1/pools/<id:pool_id>/fund", books.PoolFundApi.as_view(), name="pool-fund"),
    path("v1/pools/<id:pool_id>/allocate", books.PoolAllocateApi.as_view(), name="pool-allocate"),
    path("v1/transfers", books.TransferListApi.as_view(), name="transfers"),
    path("v1/transfers/<id:pk>", books.TransferDetailApi.as_view(), name="transfer"),
    # /v1/authorizations is the gateway's; people read the same records here.
    path(
        "v1/authorization-records",
        books.AuthorizationRecordListApi.as_view(),
        name="authorization-records",
    ),
    path(
        "v1/authorization-records/<uuid:pk>",
        books.AuthorizationRecordDetailApi.as_view(),
        name="authorization-record",
    ),
    path(
        "v1/transfer-requests",
        books.TransferRequestCollectionApi.as_view(),
        name="transfer-requests",
    ),
    path(
        "v1/transfer-requests/<id:pk>",
        books.TransferRequestDetailApi.as_view(),
        name="transfer-request",
    ),
    path(
        "v1/transfer-requests/<id:request_id>/approve",
        books.TransferRequestApproveApi.as_view(),
        name="transfer-request-approve",
    ),
    path(
        "v1/transfer-requests/<id:request_id>/reject",
        books.TransferRequestRejectApi.as_view(),
        name="transfer-request-reject",
    ),
    path(
        "v1/transfer-requests/<id:request_id>/cancel",
        books.TransferRequestCancelApi.as_view(),
        name="transfer-request-cancel",
    ),
    path("v1/alerts", alerts.AlertListApi.as_view(), name="alerts"),
    path("v1/alerts/<id:pk>", alerts.AlertDetailApi.as_view(), name="alert"),
    path(
        "v1/alerts/<id:alert_id>/acknowledge",
        alerts.AlertAcknowledgeApi.as_view(),
        name="alert-acknowledge",
    ),
    path("v1/exemptions", calendar.ExemptionCollectionApi.as_view(), name="exemptions"),
    path("v1/exemptions/<id:pk>", calendar.ExemptionDetailApi.as_view(), name="exemption"),
    path(
        "v1/exemptions/<id:exemption_id>/approve",
        calendar.ExemptionApproveApi.as_view(),
        name="exemption-approve",
    ),
    path(
        "v1/exemptions/<id:exemption_id>/reject",
        calendar.ExemptionRejectApi.as_view(),
        name="exemption-reject",
    ),
    path(
        "v1/exemptions/<id:exemption_id>/cancel",
        calendar.ExemptionCancelApi.as_view(),
        name="exemption-cancel",
    ),
    path(
        "v1/exemptions/<id:exemption_id>/revoke",
        calendar.ExemptionRevokeApi.as_view(),
        name="exemption-revoke",
    ),
    path("v1/plans", calendar.PlanCollectionApi.as_view(), name="plans"),
    path("v1/plans/<id:pk>", calendar.PlanDetailApi.as_view(), name="plan"),
    path(
        "v1/plans/<id:plan_id>/comparison",
        calendar.PlanComparisonApi.as_view(),
        name="plan-comparison",
    ),
    path(
        "v1/plans/<id:plan_id>/lines/<id:line_id>",
        calendar.PlanLineSetApi.as_view(),
        name="plan-line-set",
    ),
    path("v1/plans/<id:plan_id>/total", calendar.PlanTotalSetApi.as_view(), name="plan-total"),
    path("v1/plans/<id:plan_id>/approve", calendar.PlanApproveApi.as_view(), name="plan-approve"),
    path("v1/reports/spend", reports.SpendReportApi.as_view(), name="report-spend"),
    path("v1/reports/allocation", reports.AllocationReportApi.as_view(), name="report-allocation"),
    path("v1/reports/burn", reports.BurnReportApi.as_view(), name="report-burn"),
    path("v1/reports/outliers", reports.OutlierReportApi.as_view(), name="report-outliers"),
    path("v1/reports/savings", reports.SavingsReportApi.as_view(), name="report-savings"),
    path("v1/reports/chargeback", reports.ChargebackReportApi.as_view(), name="report-chargeback"),
    path(
        "v1/reports/chargeback.csv",
        reports.ChargebackCsvApi.as_view(),
        name="report-chargeback-csv",
    ),
    path(
        "v1/reports/pull-requests",
        reports.PullRequestCostReportApi.as_view(),
        name="report-pull-requests",
    ),
    path("v1/commits", reports.CommitCreateApi.as_view(), name="commits"),
    path(
        "v1/commits/<path:repo>/<str:sha>/receipt",
        reports.CommitReceiptApi.as_view(),
        name="commit-receipt",
    ),
    # Last: an address no route matches gets the JSON error every client parses.
    re_path(r"^(?P<path>.*)$", api_not_found),
]
