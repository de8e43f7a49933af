"""Operations: how tasks are declared and fanned out to tenants (tasking), task runs with
progress, heartbeats and /healthz. Imports tenants, audit and common (import-linter: `layers`)."""
