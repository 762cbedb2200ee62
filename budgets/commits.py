"""Commits and pull requests: which gateway sessions and authorizations went into a commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from budgets.errors import NotAllowedError, NotFoundError
from budgets.models import Authorization, Commit, CommitLink, Member, Role


@transaction.atomic
def commit_record(
    *,
    member: Member,
    repo: str,
    sha: str,
    pr_number: int | None,
    is_merged: bool,
    merged_at: datetime | None,
    author: str,
    session_ids: Iterable[str],
    authorization_ids: Iterable[uuid.UUID],
) -> Commit:
    """Record a commit (or update its PR and merge state) and link sessions and authorizations
    to it; links only add, so sending the same commit again changes nothing.

    Only who recorded the commit, finance and admins may change its PR, merge state or author
    afterwards (they drive cost per merged PR); anyone in the organization may add links.

    Raises NotFoundError (an authorization not in the member's organization), NotAllowedError.
    """
    commit, created = Commit.objects.select_for_update().get_or_create(
        organization_id=member.organization_id, repo=repo, sha=sha.lower(),
        defaults={"member": member, "author": author},
    )  # fmt: skip
    changes = (
        (pr_number is not None and pr_number != commit.pr_number)
        or (is_merged and not commit.is_merged)
        or bool(author and author != commit.author)
    )
    if (
        changes and not created and commit.member_id != member.pk
        and member.role not in (Role.FINANCE, Role.ADMIN)
    ):  # fmt: skip
        raise NotAllowedError("Only who recorded this commit, finance or admins may change it.")
    commit.pr_number = pr_number if pr_number is not None else commit.pr_number
    if is_merged and not commit.is_merged:
        commit.is_merged, commit.merged_at = True, merged_at or timezone.now()
    commit.author = author or commit.author
    commit.save(update_fields=["pr_number", "is_merged", "merged_at", "author"])
    wanted = set(authorization_ids)
    found = set(
        Authorization.objects.filter(
            organization_id=member.organization_id, pk__in=wanted
        ).values_list("pk", flat=True)
    )
    if wanted - found:
        raise NotFoundError("No such authorization in your organization.")
    for session_id in sorted(set(session_ids)):
        CommitLink.objects.get_or_create(commit=commit, session_id=session_id)
    for authorization_id in sorted(found):
        CommitLink.objects.get_or_create(commit=commit, authorization_id=authorization_id)
    return commit
