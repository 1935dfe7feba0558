"""Registry endpoints: list versions, download a version's files, activate one, roll a dataset back,
and recommend."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.api.authentication import RecommendTokenAuthentication
from webapp.api.pagination import int_query_param, paginated_response
from webapp.api.throttling import RecommendRateThrottle
from webapp.core.exceptions import ApplicationError
from webapp.core.permissions import CHANGE
from webapp.registry.models import ModelVersion
from webapp.registry.selectors import (
    dataset_versions_to_change,
    model_version_file,
    model_version_get,
    model_version_list,
)
from webapp.registry.services import model_version_activate, model_version_rollback
from webapp.registry.serving import serving_recommend, serving_version


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    label = serializers.CharField()

    class Meta:
        model = ModelVersion
        fields = (
            "id",
            "label",
            "dataset",
            "job",
            "number",
            "model_name",
            "depth",
            "method",
            "metrics",
            "promotion",
            "training_time_s",
            "is_active",
            "activated_at",
            "created_at",
        )


class ModelVersionListApi(APIView):
    @extend_schema(responses=ModelVersionOutputSerializer(many=True), operation_id="versions_list")
    def get(self, request: Request) -> Response:
        """Versions you own, newest first; ``?dataset=ID`` for one dataset's."""
        return paginated_response(
            queryset=model_version_list(user=request.user, dataset_id=int_query_param(request, "dataset")),
            serializer_class=ModelVersionOutputSerializer,
            request=request,
            view=self,
        )


class ModelVersionDetailApi(APIView):
    @extend_schema(responses=ModelVersionOutputSerializer)
    def get(self, request: Request, version_id: int) -> Response:
        return Response(
            ModelVersionOutputSerializer(model_version_get(user=request.user, version_id=version_id)).data
        )


class ModelVersionFileApi(APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, version_id: int, name: str) -> FileResponse:
        """A file of the version's artifact folder (``model.onnx``, ``metadata.json``, sidecars), for
        whoever may act on the version; one who may only read it gets 403."""
        file = model_version_file(user=request.user, version_id=version_id, name=name)
        return FileResponse(file.open(), as_attachment=True, filename=file.name)


class ModelVersionActivateApi(APIView):
    parser_classes = (JSONParser,)

    class ModelVersionActivateInputSerializer(serializers.Serializer):
        override = serializers.BooleanField(
            default=False,
            help_text="activate a version the promotion gate held (it did not beat popularity or the "
            "serving version on validation); without it such a request answers 409 with the comparison",
        )

    @extend_schema(request=ModelVersionActivateInputSerializer, responses=ModelVersionOutputSerializer)
    def post(self, request: Request, version_id: int) -> Response:
        """Serve this version for its dataset (activating an older version is a rollback)."""
        serializer = self.ModelVersionActivateInputSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        version = model_version_activate(
            version=model_version_get(user=request.user, version_id=version_id, action=CHANGE),
            override=serializer.validated_data["override"],
            by=request.user,
        )
        return Response(ModelVersionOutputSerializer(version).data)


class DatasetRollbackApi(APIView):
    @extend_schema(request=None, responses=ModelVersionOutputSerializer)
    def post(self, request: Request, dataset_id: int) -> Response:
        """Activate the version that was active before the current one."""
        version = model_version_rollback(
            dataset=dataset_versions_to_change(user=request.user, dataset_id=dataset_id), by=request.user
        )
        return Response(ModelVersionOutputSerializer(version).data)


RECOMMEND_KEYS = {"dataset", "history", "k", "exclude_seen"}


class RecommendApi(APIView):
    """Top-k next items for a history, from the dataset's active version (ONNX Runtime).

    Its latency budget is about a millisecond above the model call, so nothing is read from the
    database per request in the common case: the token and the active version come from this
    process's memory when read less than ``SERVING_CACHE_S`` ago (see webapp.api.authentication and
    webapp.registry.serving for what that bound means for a revoked token or an activation).
    """

    authentication_classes = (RecommendTokenAuthentication, SessionAuthentication)
    parser_classes = (JSONParser,)
    renderer_classes = (JSONRenderer,)  # JSON only: no negotiation with the browsable API per call
    throttle_classes = (RecommendRateThrottle,)

    @extend_schema(
        # the same schemes as every endpoint's (DRF's token and the session cookie): named here, since
        # the schema generator would take the token class's subclass for a second "tokenAuth"
        auth=[{"tokenAuth": []}, {"cookieAuth": []}],
        request=inline_serializer(
            "RecommendInput",
            {
                "dataset": serializers.IntegerField(),
                "history": serializers.ListField(
                    child=serializers.CharField(), help_text="raw item ids, oldest first"
                ),
                "k": serializers.IntegerField(default=10),
                "exclude_seen": serializers.BooleanField(default=True),
            },
        ),
        responses=inline_serializer(
            "RecommendOutput",
            {
                "dataset": serializers.IntegerField(),
                "version": serializers.CharField(),
                "items": serializers.ListField(child=serializers.CharField()),
                "scores": serializers.ListField(child=serializers.FloatField()),
                "dropped": serializers.ListField(child=serializers.CharField()),
                "fallback": serializers.BooleanField(),
            },
        ),
    )
    def post(self, request: Request) -> Response:
        # Checked by hand rather than by a serializer: this endpoint's latency budget is a few ms,
        # and serving validates history, k and exclude_seen with its own messages.
        body = request.data
        if not isinstance(body, dict):
            raise ApplicationError("the body must be a JSON object with dataset, history, k, exclude_seen")
        unknown = sorted(set(body) - RECOMMEND_KEYS)
        if unknown:
            raise ApplicationError(
                f"unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(RECOMMEND_KEYS))}",
                {"unknown": unknown},
            )
        for name in ("dataset", "history"):
            if name not in body:
                raise ApplicationError(f"{name} is required", {"field": name})
        dataset_id = body["dataset"]
        if isinstance(dataset_id, bool) or not isinstance(dataset_id, int):
            raise ApplicationError("dataset must be a dataset id (a whole number)", {"field": "dataset"})
        version = serving_version(user=request.user, dataset_id=dataset_id)
        result = serving_recommend(
            version=version,
            history=body["history"],
            k=body.get("k", 10),
            exclude_seen=body.get("exclude_seen", True),
        )
        return Response(
            {
                "dataset": dataset_id,
                "version": result.version,
                "items": list(result.items),
                "scores": list(result.scores),
                "dropped": list(result.dropped),
                "fallback": result.fallback,
            }
        )
