"""Personal API tokens in admin: a user creates their own (shown once) and revokes them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from api.models import PersonalToken
from api.tokens import DEFAULT_LIFETIME, personal_token_create, personal_token_revoke


class PersonalTokenForm(forms.ModelForm):  # type: ignore[type-arg]
    days = forms.IntegerField(min_value=1, max_value=366, initial=DEFAULT_LIFETIME.days)

    class Meta:
        model = PersonalToken
        fields = ("name",)


@admin.register(PersonalToken)
class PersonalTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "prefix", "user", "created_at", "expires_at", "revoked_at")
    readonly_fields = ("prefix", "user", "created_at", "expires_at", "revoked_at", "last_used_at")
    actions = ("revoke_selected",)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = PersonalTokenForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PersonalToken]:
        tokens = super().get_queryset(request)
        return tokens if request.user.is_superuser else tokens.filter(user_id=request.user.pk)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PersonalToken, form: Any, change: bool) -> None:
        token, raw = personal_token_create(
            user=request.user, name=obj.name, lifetime=timedelta(days=form.cleaned_data["days"])
        )
        obj.pk = token.pk
        messages.warning(request, f"Your new token (shown once, copy it now): {raw}")

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[PersonalToken]) -> None:
        for token in queryset:
            personal_token_revoke(token=token)
        messages.success(request, f"{queryset.count()} token(s) revoked.")
