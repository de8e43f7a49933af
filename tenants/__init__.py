"""The public schema: Tenant, Domain, User, TenantMembership, roles and permissions,
departments, sign-up, invitations, routing and the settings pages for them.
Imports common and audit only; never a tenant-data app (import-linter: `layers`)."""
