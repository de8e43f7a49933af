"""Warehouse exports, their files and the workspace's schedule (tenant schema; imported by
segments.models)."""

from django.db import models


class WarehouseExport(models.Model):
    """One export run. `events_after` / `events_until` bound the events it carries by when
    they arrived (exclusive, inclusive): the next export starts where this one ended."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Exporting"
        SUCCEEDED = "succeeded", "Exported"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "On demand"
        SCHEDULED = "scheduled", "Scheduled"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    tables = models.JSONField(default=list, help_text="The tables exported, in order")
    include_personal = models.BooleanField(default=False, help_text="Personal traits (email, name, …) included")
    events_after = models.DateTimeField(null=True, blank=True)
    events_until = models.DateTimeField()
    tables_done = models.JSONField(default=list, blank=True, help_text="Tables whose files are all stored")
    rows = models.JSONField(default=dict, blank=True, help_text="Rows per table")
    bytes = models.BigIntegerField(default=0)
    manifest = models.CharField(max_length=500, blank=True, help_text="Where the manifest is in storage")
    error = models.TextField(blank=True)
    task_run = models.ForeignKey("ops.TaskRun", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="warehouse_exports")
    created_by_id = models.BigIntegerField(null=True, blank=True)  # a public-schema user
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"

    @property
    def rows_in_order(self) -> list[tuple[str, int]]:
        """Rows per finished table in export order (a JSON object's keys come back sorted)."""
        return [(name, self.rows[name]) for name in self.tables if name in self.rows]


class WarehouseExportFile(models.Model):
    """A Parquet file an export stored, recorded once it is complete in storage."""

    export = models.ForeignKey(WarehouseExport, on_delete=models.CASCADE, related_name="files")
    table = models.CharField(max_length=32)
    partition = models.CharField(max_length=64, blank=True, help_text="e.g. date=2026-11-01")
    path = models.CharField(max_length=500)
    rows = models.BigIntegerField()
    row_groups = models.IntegerField()
    bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["export", "id"]
        constraints = [models.UniqueConstraint(fields=["export", "path"], name="warehouse_file_unique_path")]

    def __str__(self) -> str:
        return self.path


class WarehouseSchedule(models.Model):
    """The workspace's export schedule (one row). Off until someone turns it on."""

    class Every(models.TextChoices):
        HOUR = "hour", "Every hour"
        DAY = "day", "Every day"
        WEEK = "week", "Every week"

    enabled = models.BooleanField(default=False)
    every = models.CharField(max_length=8, choices=Every.choices, default=Every.DAY)
    tables = models.JSONField(default=list)
    include_personal = models.BooleanField(default=False)
    next_run_at = models.DateTimeField(null=True, blank=True)
    updated_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"every {self.every}" if self.enabled else "off"
