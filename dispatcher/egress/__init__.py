"""Sending one postback request, the same for the workers' deliveries and the portal's send test.

`render` builds the request from a postback and its macro values (encoding, headers, User-Agent, the
signature from `signing`); `client` sends it (`ssrf` vets the resolved address; timeouts, no redirects, a
capped read); `verdict` says what the answer means: success, or an `errors.DeliveryError` that knows whether
trying again can help. What happens around a send (claims, the attempt log, retry scheduling) is `workers`'.
"""
