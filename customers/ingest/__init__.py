"""Ingestion: the Segment-spec tracking format (tracking), the unit of work (message), the
set-based write path (store: ingest_messages), identity resolution and merges (identities),
and the SQL plumbing they share (sql, gc). Every batch ends in one customers.touch hand-off."""
