"""Training job endpoints: create, list, detail, cancel, resume, retrain (continual learning), live curves."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.api.pagination import int_query_param, paginated_response
from webapp.core.exceptions import ApplicationError
from webapp.core.permissions import CHANGE
from webapp.datasets.selectors import dataset_get
from webapp.registry.selectors import model_version_get
from webapp.training import configs
from webapp.training.comparison import job_comparison
from webapp.training.models import TrainingJob, TrainingPoint
from webapp.training.selectors import training_job_get, training_job_list, training_points_list
from webapp.training.services import (
    training_job_cancel,
    training_job_create,
    training_job_resume,
    training_job_retrain,
)


class TrainingJobOutputSerializer(serializers.ModelSerializer):
    version = serializers.SerializerMethodField()
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    stale = serializers.BooleanField(source="is_stale")

    class Meta:
        model = TrainingJob
        fields = (
            "id",
            "dataset",
            "base_version",
            "status",
            "status_label",
            "config",
            "progress",
            "stages",
            "metrics",
            "estimate",
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
        responses={202: TrainingJobOutputSerializer},
        description=configs.__doc__,
    )
    def post(self, request: Request) -> Response:
        serializer = self.TrainingJobCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dataset = dataset_get(user=request.user, dataset_id=data["dataset"], action=CHANGE)
        job = training_job_create(owner=dataset.owner, dataset=dataset, config=data.get("config"))
        return Response(TrainingJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class TrainingJobDetailApi(APIView):
    @extend_schema(responses=TrainingJobOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(TrainingJobOutputSerializer(training_job_get(user=request.user, job_id=job_id)).data)


class TrainingJobCancelApi(APIView):
    @extend_schema(request=None, responses={202: TrainingJobOutputSerializer})
    def post(self, request: Request, job_id: int) -> Response:
        """A queued job ends CANCELLED at once; a running one stops after its current step."""
        job = training_job_cancel(job=training_job_get(user=request.user, job_id=job_id, action=CHANGE))
        return Response(TrainingJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class TrainingJobResumeApi(APIView):
    @extend_schema(request=None, responses={202: TrainingJobOutputSerializer})
    def post(self, request: Request, job_id: int) -> Response:
        """Requeue a failed job or one whose worker died; it continues after its last finished stage."""
        job = training_job_resume(job=training_job_get(user=request.user, job_id=job_id, action=CHANGE))
        return Response(TrainingJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class TrainingJobRetrainApi(APIView):
    """Continual learning for schedulers: stack the deployed model deeper and train it on all the data."""

    parser_classes = (JSONParser,)

    class TrainingJobRetrainInputSerializer(serializers.Serializer):
        dataset = serializers.IntegerField(
            required=False, help_text="retrain from this dataset's active version (or its parent's)"
        )
        version = serializers.IntegerField(required=False, help_text="retrain from this version")
        final_blocks = serializers.IntegerField(
            required=False,
            min_value=1,
            help_text="deepest model the retrain may grow to (default: twice the base's depth, or the "
            "base job's ceiling if deeper); it stacks only while a stage pays",
        )
        method = serializers.ChoiceField(
            choices=("preserving", "adjacent", "cross"),
            required=False,
            help_text="stacking method (default: preserving, function-preserving)",
        )

    @extend_schema(request=TrainingJobRetrainInputSerializer, responses={202: TrainingJobOutputSerializer})
    def post(self, request: Request) -> Response:
        """The job trains on the newest ready increment of the base version's dataset (all events)."""
        serializer = self.TrainingJobRetrainInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if ("dataset" in data) == ("version" in data):
            raise ApplicationError("give either dataset or version", {"fields": ["dataset", "version"]})
        job = training_job_retrain(
            owner=request.user,
            dataset=(
                dataset_get(user=request.user, dataset_id=data["dataset"], action=CHANGE)
                if "dataset" in data
                else None
            ),
            version=model_version_get(user=request.user, version_id=data["version"], action=CHANGE)
            if "version" in data
            else None,
            final_blocks=data.get("final_blocks"),
            method=data.get("method"),
        )
        return Response(TrainingJobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class TrainingPointOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingPoint
        fields = ("id", "kind", "stage", "blocks", "step", "epoch", "wall_s", "loss", "metrics")


class TrainingJobCurveApi(APIView):
    """Live curves: the job's state and the points after ``?after=<last point id>`` (the dashboard polls)."""

    class TrainingJobStateSerializer(serializers.ModelSerializer):
        status_label = serializers.CharField(source="get_status_display")
        finished = serializers.SerializerMethodField()
        version = serializers.SerializerMethodField()

        class Meta:
            model = TrainingJob
            fields = (
                "id",
                "status",
                "status_label",
                "finished",
                "progress",
                "stages",
                "metrics",
                "error",
                "version",
            )

        def get_finished(self, job: TrainingJob) -> bool:
            return job.status not in TrainingJob.ACTIVE

        def get_version(self, job: TrainingJob) -> int | None:
            version = getattr(job, "version", None)
            return version.pk if version is not None else None

    @extend_schema(
        responses=inline_serializer(
            "TrainingJobCurve",
            {
                "job": TrainingJobStateSerializer(),
                "points": TrainingPointOutputSerializer(many=True),
                "last": serializers.IntegerField(),
            },
        )
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = training_job_get(user=request.user, job_id=job_id)
        after = int_query_param(request, "after") or 0
        points = training_points_list(job=job, after=after)
        return Response(
            {
                "job": self.TrainingJobStateSerializer(job).data,
                "points": TrainingPointOutputSerializer(points, many=True).data,
                "last": points[-1].pk if points else after,
            }
        )


class TrainingJobCompareApi(APIView):
    """Two runs side by side: curves, wall time, test metrics and the speedup to scratch's best."""

    @extend_schema(
        parameters=[
            OpenApiParameter("first", int, required=True, description="a job id"),
            OpenApiParameter("second", int, required=True, description="another job id"),
        ],
        responses=inline_serializer(
            "TrainingJobComparison",
            {
                "metric": serializers.CharField(),
                "runs": serializers.ListField(child=serializers.DictField()),
                "reference": serializers.IntegerField(allow_null=True),
                "speedup": serializers.FloatField(allow_null=True),
                "time_to_reach_s": serializers.FloatField(allow_null=True),
                "steps_to_reach": serializers.IntegerField(allow_null=True),
                "note": serializers.CharField(),
                "previous_on_new_data": serializers.DictField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        jobs = []
        for name in ("first", "second"):
            job_id = int_query_param(request, name)
            if job_id is None:
                raise ApplicationError(f"query parameter {name} (a job id) is required", {"field": name})
            jobs.append(training_job_get(user=request.user, job_id=job_id))
        return Response(job_comparison(first=jobs[0], second=jobs[1]).to_dict())
