"""Background runs over the REST API: poll `/api/v1/tasks/<id>/` until `status` is final."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.pages import ANY_MEMBER
from ops.models import TaskRun
from ops.selectors import task_run_get
from ops.views import KIND_PERMISSIONS


class TaskRunOutput(serializers.ModelSerializer):
    percent = serializers.IntegerField(allow_null=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = TaskRun
        fields = ["id", "kind", "status", "label", "done", "total", "percent", "message", "error", "result",
                  "started_at", "finished_at", "created_at", "url"]

    def get_url(self, run) -> str:
        return f"/api/v1/tasks/{run.pk}/"


class TaskRunView(APIView):
    required_permissions = {"GET": ANY_MEMBER}

    @extend_schema(responses=TaskRunOutput)
    def get(self, request, pk: int):

        run = task_run_get(run_id=pk)
        if run is None:
            raise Http404
        needed = KIND_PERMISSIONS.get(run.kind)
        if needed is None or not request.actor.has(needed):
            raise exceptions.PermissionDenied(f"This needs the “{needed}” permission.")
        return Response(TaskRunOutput(run).data)
