"""Times on pages: every one through the `when` filter, in the signed-in user's time zone, with its offset.

Times are stored and computed in UTC; a publisher or staff member may choose a zone on their account page
(an IANA name such as Europe/Berlin). Anonymous pages, and accounts that chose none, show UTC.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import Flask, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user  # type: ignore[import-untyped]

from dispatcher.db import request_session
from dispatcher.validation import FieldError

FORMATS = {
    "seconds": "%Y-%m-%d %H:%M:%S",
    "minutes": "%Y-%m-%d %H:%M",
    "date": "%Y-%m-%d",
}


@functools.cache
def zone_names() -> tuple[str, ...]:
    """Every IANA zone this machine knows (the tzdata package where the system has none), sorted."""
    return tuple(sorted(available_timezones()))


def checked_zone(value: str) -> str | None:
    """A zone name from the account form: blank is UTC (None), an unknown name a `FieldError`."""
    name = value.strip()
    if not name or name == "UTC":
        return None
    if name not in zone_names():
        raise FieldError(
            "time_zone", name, "must be a time zone name such as Europe/Berlin or America/New_York"
        )
    return name


def _viewer_zone() -> tzinfo:
    name = viewer_zone_name()
    try:
        return UTC if name == "UTC" else ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # removed from tzdata since it was chosen
        return UTC


def when(moment: datetime | None, precision: str = "seconds") -> str:
    """`2026-12-03 17:40:05 UTC`, or in the viewer's zone `2026-12-03 18:40:05 +01:00`; a day alone for
    `date` (in that zone, so a late-evening sale falls on the viewer's day)."""
    if moment is None:
        return ""
    zone = _viewer_zone()
    local = moment.astimezone(zone)
    text = local.strftime(FORMATS[precision])
    if precision == "date":
        return text
    if zone is UTC:
        return f"{text} UTC"
    offset = local.strftime("%z")
    return f"{text} {offset[:3]}:{offset[3:]}"


def viewer_zone_name() -> str:
    name = getattr(current_user, "time_zone", None) if current_user else None
    return name or "UTC"


class HasZone(Protocol):
    time_zone: str | None


def save_zone(account: HasZone, page: Callable[[str], str], account_endpoint: str) -> ResponseReturnValue:
    """The account form's POST, for publishers and staff alike: the zone saved and back to the account page,
    or the page again (`page(error)`) with a 400 naming the field."""
    try:
        account.time_zone = checked_zone(request.form.get("time_zone", ""))
    except FieldError as exc:
        return page(str(exc)), 400
    request_session().commit()
    flash(f"Times are now shown in {account.time_zone or 'UTC'}.", "success")
    return redirect(url_for(account_endpoint))


def init_app(app: Flask) -> None:
    app.add_template_filter(when, "when")
    app.add_template_global(viewer_zone_name, "viewer_zone")
