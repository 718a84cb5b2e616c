"""The publisher portal's services: what the pages and the publisher API do, without any HTTP in it.

Every query is scoped to one publisher: an id that belongs to someone else is simply not found. What other
rooms use too lives beside this package, named for what it holds: `dispatcher.postback_rules`,
`dispatcher.postback_pausing`, `dispatcher.backfill`, `dispatcher.login_limits`,
`dispatcher.delivery_details`.
"""
