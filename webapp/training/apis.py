"""Training job endpoints: create, list, detail, cancel, resume."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.api.pagination import int_query_param, paginated_response
from webapp.datasets.selectors import dataset_get
from webapp.training import configs
from webapp.training.models import TrainingJob
from webapp.training.selectors import training_job_get, training_job_list
from webapp.training.services import training_job_cancel, training_job_create, training_job_resume


class TrainingJobOutputSerializer(serializers.ModelSerializer):
    version = serializers.SerializerMethodField()
    stale = serializers.BooleanField(source="is_stale")

    class Meta:
        model = TrainingJob
        fields = (
            "id",
            "dataset",
            "status",
            "config",
            "progress",
            "stages",
            "metrics",
            "error",
            "attempts",
            "heartbeat_at",
            "stale",
            "started_at",
            "finished_at",
            "created_at",
            "version",
        )

    def get_version(self, job: TrainingJob) -> int | None:
        version = getattr(job, "version", None)
        return version.pk if version is not None else None


class TrainingJobListCreateApi(APIView):
    parser_classes = (JSONParser,)

    class TrainingJobCreateInputSerializer(serializers.Serializer):
        dataset = serializers.IntegerField()
        config = serializers.JSONField(
            required=False,
            help_text="model, model_options, schedule, train, split, export, warm_start (see above)",
        )

    @extend_schema(responses=TrainingJobOutputSerializer(many=True), operation_id="jobs_list")
    def get(self, request: Request) -> Response:
        """Jobs you own, newest first; ``?dataset=ID`` for one dataset's."""
        return paginated_response(
            queryset=training_job_list(user=request.user, dataset_id=int_query_param(request, "dataset")),
            serializer_class=TrainingJobOutputSerializer,
            request=request,
            view=self,
        )

    @extend_schema(
        request=TrainingJobCreateInputSerializer,
        responses={201: TrainingJobOutputSerializer},
        description=configs.__doc__,
    )
    def post(self, request: Request) -> Response:
        serializer = self.TrainingJobCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dataset = dataset_get(user=request.user, dataset_id=data["dataset"])
        job = training_job_create(owner=request.user, dataset=dataset, config=data.get("config"))
        return Response(TrainingJobOutputSerializer(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailApi(APIView):
    @extend_schema(responses=TrainingJobOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(TrainingJobOutputSerializer(training_job_get(user=request.user, job_id=job_id)).data)


class TrainingJobCancelApi(APIView):
    @extend_schema(request=None, responses={202: TrainingJobOutputSerializer})
    def post(self, request: Request, job_id: int) -> Response:
        """A queued job ends CANCELLED at once; a running one stops after its current step."""
        job = training_job_cancel(job=training_job_get(user=request.user, job_id=job_id))
        return Response(TrainingJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class TrainingJobResumeApi(APIView):
    @extend_schema(request=None, responses={202: TrainingJobOutputSerializer})
    def post(self, request: Request, job_id: int) -> Response:
        """Requeue a failed job or one whose worker died; it continues after its last finished stage."""
        job = training_job_resume(job=training_job_get(user=request.user, job_id=job_id))
        return Response(TrainingJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
