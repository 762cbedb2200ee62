"""The API's own records: people's personal tokens and the answers kept for Idempotency-Key.

Invariants:
- a token is stored only as its SHA-256; the raw token is shown once, when created;
- a token authenticates only while not revoked and not expired;
- one kept answer per (user, Idempotency-Key): a retry replays it, a different request with
  the same key is refused.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class PersonalToken(models.Model):
    """A person's API token (for tools and scripts), acting as that person with their role."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="The token's first characters, to tell.")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class IdempotentAnswer(models.Model):
    """The answer a POST with an Idempotency-Key got, replayed to a retry with the same key."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_digest = models.CharField(max_length=64, help_text="SHA-256 of method, path, body.")
    status_code = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="api_idempotent_answer_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} → {self.status_code}"
