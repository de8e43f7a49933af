"""CSV import of customers, events and survey answers.

upload (services.import_upload) → header and sample detected, file stored → mapping
(mapping.py, services.import_start) → a Celery task (tasks.py) streams the file in chunks
through the one write path (customers.ingest / customers.feedback) → counts and a per-row
error report. Parsing and cell conversion (parsing.py, mapping.py) do no I/O.
"""
