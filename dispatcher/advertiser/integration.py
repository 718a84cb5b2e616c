"""The advertiser's integration page: its programs with the S2S URL, the pixel and the tracking-link format
for each, and rotating its API key and S2S token with a grace period chosen from a short list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher import account_admin
from dispatcher.models import Advertiser, Program
from dispatcher.validation import FieldError

# What the page offers (`account_admin.grace_period` takes more from the CLI): value -> label.
GRACE_CHOICES = {"0": "None: the old one stops now", "1h": "1 hour", "24h": "24 hours", "7d": "7 days"}
SECRETS = ("api_key", "s2s_token")
MASKED_TOKEN = "s2s_…"  # the token is shown once, when made; after that only where it goes


@dataclass(frozen=True)
class Formats:
    program: Program
    s2s_url: str
    pixel: str
    tracking_link: str


def programs(session: Session, advertiser_id: int) -> list[Program]:
    return list(
        session.scalars(select(Program).where(Program.advertiser_id == advertiser_id).order_by(Program.id))
    )


def formats(base_url: str, program: Program, token: str | None) -> Formats:
    """`base_url` is this site's root (no trailing slash); `token` the S2S token if just made, else masked."""
    shown = quote(token, safe="") if token else MASKED_TOKEN
    s2s = (
        f"{base_url}/s2s/transaction?token={shown}&clickid={{clickid}}&on={{order_number}}&sa={{sale_amount}}"
    )
    if program.currency != "USD":
        s2s += f"&cur={program.currency}"
    pixel = f'<img src="{s2s}&pixel=1" width="1" height="1" alt="">'
    link = f"{base_url}/c/{program.id}?pub={{publisher_id}}&ts={{traffic_source_id}}&fobs={{sub_id}}"
    return Formats(program, s2s, pixel, link)


def grace(value: str) -> timedelta:
    if value not in GRACE_CHOICES:
        raise FieldError("grace", value, f"must be one of {', '.join(GRACE_CHOICES)}")
    return account_admin.grace_period("grace", value)


def rotate(session: Session, advertiser_id: int, secret: str, grace_value: str) -> account_admin.Rotated:
    """A new API key or S2S token; the caller commits, then shows the secret once."""
    period = grace(grace_value)
    if secret == "api_key":
        return account_admin.rotate_advertiser_key(session, advertiser_id, period, via="advertiser portal")
    if secret == "s2s_token":
        return account_admin.rotate_advertiser_s2s_token(
            session, advertiser_id, period, via="advertiser portal"
        )
    raise FieldError("secret", secret, f"must be one of {', '.join(SECRETS)}")


def previous_valid_until(advertiser: Advertiser) -> dict[str, object]:
    """When each replaced secret stops working (None: none is in a grace period)."""
    return {
        "api_key": advertiser.previous_api_key_until,
        "s2s_token": advertiser.previous_s2s_token_until,
    }
