"""REST API v1 for customer profiles and events (routes in config/urls_api.py)."""
