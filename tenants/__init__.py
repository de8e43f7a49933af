"""The public schema: Tenant, Domain, User, TenantMembership, roles and permissions,
departments, sign-up, invitations, routing and the settings pages for them.
Imports common only, never a tenant-data app (import-linter: `layers`); team changes are
handed to the audit log through settings.TEAM_CHANGE_HANDLERS."""
