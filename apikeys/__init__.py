"""API keys with scopes, the tracking write key, and their settings page.
Imports tenants, audit and common (import-linter: `layers`)."""
