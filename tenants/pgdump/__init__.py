"""pg_dump and psql for one tenant schema: which binaries to run and how they reach Django's
database (postgres.py), and renaming a schema inside a plain dump as it streams (rewrite.py).
Used by backups (tenants/backup/) and by the schema template new tenants are copied from
(tenants/template.py)."""
