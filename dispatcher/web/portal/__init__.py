"""The publisher portal's pages (`/portal/...`), one module per subject; `common` holds what they share."""

from dispatcher.web.portal import account, auth, conversions, deliveries, links, postbacks, sources
from dispatcher.web.portal.common import blueprint

__all__ = ["account", "auth", "blueprint", "conversions", "deliveries", "links", "postbacks", "sources"]
