"""Segments: the pure rule language (rules/), the engine (the only writer of memberships),
scheduling of checks, selectors (rule_context), pages and API.
Imports customers and everything below; never campaigns (import-linter: `layers`)."""
