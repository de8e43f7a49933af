"""The append-only audit log every tenant-data room records into, and its settings page with CSV export.
Imports common and tenants (import-linter: `layers`); tenants' team changes reach it through settings."""
