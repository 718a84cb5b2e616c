"""The support console's services: search, transaction view, staff actions with their audit, dashboard."""
