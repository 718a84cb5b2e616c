"""The audit log: who on the staff did what to which row. Written in the caller's transaction, so an
action and its entry commit (or roll back) together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.models import AuditEntry, StaffUser

PAGE_SIZE = 100


@dataclass(frozen=True)
class AuditRow:
    entry: AuditEntry
    staff_email: str | None


def record(
    session: Session,
    staff_id: int,
    action: str,
    target_type: str,
    target_id: object,
    **detail: Any,
) -> AuditEntry:
    entry = AuditEntry(
        staff_user_id=staff_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        detail=detail,
    )
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, before_id: int | None = None, limit: int = PAGE_SIZE) -> list[AuditRow]:
    query = (
        select(AuditEntry, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == AuditEntry.staff_user_id)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return [AuditRow(row.AuditEntry, row.email) for row in session.execute(query)]


def entries_for(session: Session, target_type: str, target_id: object) -> list[AuditRow]:
    query = (
        select(AuditEntry, StaffUser.email)
        .outerjoin(StaffUser, StaffUser.id == AuditEntry.staff_user_id)
        .where(AuditEntry.target_type == target_type, AuditEntry.target_id == str(target_id))
        .order_by(AuditEntry.id)
    )
    return [AuditRow(row.AuditEntry, row.email) for row in session.execute(query)]
