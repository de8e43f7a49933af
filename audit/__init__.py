"""The append-only audit log every room records into, and its settings page with CSV export.
Imports common only (import-linter: `layers`): tenants and everything above write into it."""
