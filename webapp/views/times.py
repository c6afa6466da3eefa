"""Times on pages: the UTC moment in a `<time>` element, shown in the viewer's zone.

Without DESK_TIMEZONE a page carries the UTC text and `data-local`; static/desk.js rewrites the
text into the browser's zone (the UTC stays in the title, on hover), and without script the
UTC text stands. With DESK_TIMEZONE every viewer gets that zone from the server and the script
leaves it. Evidence (certificates, reports, exports, packs) and the API never pass through here:
they stay in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app
from markupsafe import Markup

bp = Blueprint("times", __name__)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # checked at startup by config.py


@bp.app_template_filter("utc")
def time_tag(moment: datetime | None, seconds: bool = False) -> Markup:
    """`moment` as a `<time>` element: the desk's zone or the viewer's, the UTC on hover."""
    if moment is None:
        return Markup("—")
    # Columns are read back tz-aware (models.UTCDateTime); a naive value is UTC by convention.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    in_utc = f"{moment:{pattern}} UTC"
    zone = current_app.config.get("DESK_TIMEZONE")
    if zone:
        local = moment.astimezone(_zone(zone))
        text, local_attr = f"{local:{pattern}} {local.tzname()}", ""
    else:
        text = in_utc
        local_attr = Markup(' data-local="{}"').format("seconds" if seconds else "minutes")
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"), in_utc, local_attr, text
    )
