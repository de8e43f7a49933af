"""A CSV or Parquet import and its per-row problems (tenant schema; imported by customers.models)."""

from django.db import models


class ImportJob(models.Model):
    """One uploaded file and what became of it. The file itself lives in default storage
    under imports/<schema>/…; `rows_processed` is the checkpoint a redelivered task resumes
    from, committed together with each chunk's data and counts."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers"
        EVENTS = "events", "Events"
        SURVEY_RESPONSES = "survey_responses", "Survey answers"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"

    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Waiting for mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    original_name = models.CharField(max_length=255)
    file = models.FileField(max_length=500)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    encoding = models.CharField(max_length=16, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    header = models.JSONField(default=list)
    sample = models.JSONField(default=list, blank=True, help_text="The first rows, as text, for the mapping screen")
    # {"<column>": "<target>"}; columns left out are ignored. See customers.imports.mapping.
    mapping = models.JSONField(default=dict, blank=True)
    # Types of custom traits the file introduces, inferred from the sample: {"<key>": "number"}.
    new_trait_types = models.JSONField(default=dict, blank=True)
    rows_total = models.BigIntegerField(null=True, blank=True)
    rows_processed = models.BigIntegerField(default=0)
    rows_imported = models.BigIntegerField(default=0)
    rows_unchanged = models.BigIntegerField(default=0, help_text="Rows already stored with these values")
    rows_failed = models.BigIntegerField(default=0)
    error_report = models.FileField(max_length=500, blank=True)
    error = models.TextField(blank=True, help_text="Why the whole import failed, if it did")
    task_run = models.ForeignKey("ops.TaskRun", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="imports")
    # A public-schema user id: no cross-schema foreign key.
    created_by_id = models.BigIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # "you imported this file before": WHERE sha256 = %s AND kind = %s
            models.Index(fields=["sha256", "kind"], name="importjob_sha256_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} import #{self.pk} ({self.original_name})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def is_started(self) -> bool:
        return self.status != self.Status.UPLOADED


class ImportRowError(models.Model):
    """One problem of one row, written in the same transaction as the row's chunk, so a
    resumed import never loses or repeats one."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    row = models.BigIntegerField(help_text="Spreadsheet row number: the header is row 1")
    column = models.CharField(max_length=255, blank=True)
    code = models.CharField(max_length=64)
    message = models.CharField(max_length=500)

    class Meta:
        ordering = ["job", "row", "id"]
        indexes = [
            # the report and the result page: WHERE job_id = %s ORDER BY row, id
            models.Index(fields=["job", "row", "id"], name="importrowerror_job_row_idx"),
        ]

    def __str__(self) -> str:
        return f"row {self.row} {self.column}: {self.code}"
