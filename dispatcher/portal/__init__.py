"""The publisher portal's services: what the pages and the publisher API do, without any HTTP in it.

Every query is scoped to one publisher: an id that belongs to someone else is simply not found.
"""
