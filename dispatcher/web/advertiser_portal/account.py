"""The advertiser user's account page: the time zone its pages show times in."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from dispatcher.db import request_session
from dispatcher.models import AdvertiserUser
from dispatcher.web import times
from dispatcher.web.advertiser_portal.common import advertiser_required, blueprint, found, user_id


def _me() -> AdvertiserUser:
    return found(request_session().get(AdvertiserUser, user_id()))


def _page(me: AdvertiserUser, time_zone_error: str | None = None) -> str:
    return render_template(
        "advertiser/account.html", me=me, time_zones=times.zone_names(), time_zone_error=time_zone_error
    )


@blueprint.get("/account")
@advertiser_required
def account() -> ResponseReturnValue:
    return _page(_me())


@blueprint.post("/account/time-zone")
@advertiser_required
def set_time_zone() -> ResponseReturnValue:
    me = _me()
    return times.save_zone(me, lambda error: _page(me, error), "advertiser.account")
