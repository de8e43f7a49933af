"""Warehouse export: a tenant's customers (typed traits), events (incremental by arrival),
memberships (with history) and segment definitions as Parquet files in tenant-aware storage,
partitioned by date, with a manifest per export.

tables.py (what each table is: its Arrow schema and one streaming query) → services.py
(an export run: file by file, each recorded as it lands, so a redelivered task resumes
without duplicates) → the manifest. Pages and API are in segments/views/ and segments/api/.
"""
