"""Dataset endpoints: upload, list, detail, retry the parse with a new mapping, append an increment,
upload item titles."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from webapp.api.pagination import paginated_response
from webapp.core.exceptions import PayloadTooLargeError
from webapp.core.permissions import CHANGE
from webapp.datasets.models import Dataset
from webapp.datasets.selectors import dataset_get, dataset_list
from webapp.datasets.services import dataset_create, dataset_item_titles_set, dataset_parse_retry
from webapp.datasets.uploads import upload_too_large


class DatasetOutputSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    item_titles = serializers.SerializerMethodField(
        help_text="what the uploaded item titles hold (titles, unknown, cut, duplicates, empty, source); "
        "null without titles"
    )

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_item_titles(self, dataset: Dataset) -> dict | None:
        """The titles' summary without where the server stores them."""
        if not dataset.item_titles:
            return None
        return {k: v for k, v in dataset.item_titles.items() if k != "file"}

    class Meta:
        model = Dataset
        fields = (
            "id",
            "name",
            "owner",
            "parent",
            "status",
            "status_label",
            "error",
            "original_filename",
            "size_bytes",
            "read_options",
            "stats",
            "preview",
            "item_titles",
            "created_at",
            "parsed_at",
        )


class DatasetListOutputSerializer(DatasetOutputSerializer):
    """A dataset in a list: everything but the preview, so a page of datasets stays small."""

    class Meta(DatasetOutputSerializer.Meta):
        fields = tuple(f for f in DatasetOutputSerializer.Meta.fields if f != "preview")


class DatasetUploadInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="the interaction log: CSV/TSV, RecBole .inter, one sequence per line, Parquet"
    )
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    read_options = serializers.JSONField(
        required=False,
        binary=True,
        help_text="trainer ReadOptions as JSON: format, user_col, item_col, time_col, …",
    )


def _upload_input(request: Request) -> dict:
    """The validated multipart body; an upload stopped at the size limit becomes a 413 in words."""
    data = request.data  # parses the body, streaming the file to a temporary file
    if upload_too_large(request._request):
        limit = settings.STUDIO_UPLOAD_MAX_BYTES
        raise PayloadTooLargeError(
            f"the file is larger than the upload limit of {limit:,} bytes", {"limit": limit}
        )
    serializer = DatasetUploadInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class DatasetListCreateApi(APIView):
    parser_classes = (MultiPartParser, FormParser)

    @extend_schema(responses=DatasetListOutputSerializer(many=True), operation_id="datasets_list")
    def get(self, request: Request) -> Response:
        """The visible datasets, without their previews (the detail endpoint has those)."""
        return paginated_response(
            queryset=dataset_list(user=request.user).defer("preview"),
            serializer_class=DatasetListOutputSerializer,
            request=request,
            view=self,
        )

    @extend_schema(request=DatasetUploadInputSerializer, responses={202: DatasetOutputSerializer})
    def post(self, request: Request) -> Response:
        data = _upload_input(request)
        dataset = dataset_create(
            owner=request.user,
            upload=data["file"],
            name=data.get("name", ""),
            read_options=data.get("read_options"),
        )
        return Response(DatasetOutputSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)


class DatasetDetailApi(APIView):
    @extend_schema(responses=DatasetOutputSerializer)
    def get(self, request: Request, dataset_id: int) -> Response:
        return Response(DatasetOutputSerializer(dataset_get(user=request.user, dataset_id=dataset_id)).data)


class DatasetParseApi(APIView):
    parser_classes = (JSONParser,)

    class DatasetParseInputSerializer(serializers.Serializer):
        read_options = serializers.JSONField(
            required=False, help_text="a new mapping; omitted: the current one"
        )

    @extend_schema(request=DatasetParseInputSerializer, responses={202: DatasetOutputSerializer})
    def post(self, request: Request, dataset_id: int) -> Response:
        """Parse again (after a failure, or with another mapping); the stored upload is reused."""
        dataset = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        serializer = self.DatasetParseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = dataset_parse_retry(
            dataset=dataset, read_options=serializer.validated_data.get("read_options")
        )
        return Response(DatasetOutputSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)


class DatasetIncrementApi(APIView):
    parser_classes = (MultiPartParser, FormParser)

    @extend_schema(request=DatasetUploadInputSerializer, responses={202: DatasetOutputSerializer})
    def post(self, request: Request, dataset_id: int) -> Response:
        """Upload new events to append to this dataset: a new dataset holding both, for retraining."""
        parent = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        data = _upload_input(request)
        dataset = dataset_create(
            owner=parent.owner,  # the increment continues the parent's data: it stays its owner's
            upload=data["file"],
            name=data.get("name", ""),
            read_options=data.get("read_options"),
            parent=parent,
        )
        return Response(DatasetOutputSerializer(dataset).data, status=status.HTTP_202_ACCEPTED)


class DatasetItemTitlesApi(APIView):
    parser_classes = (MultiPartParser, FormParser)

    class DatasetItemTitlesInputSerializer(serializers.Serializer):
        file = serializers.FileField(
            help_text="CSV or TSV: item id, title (header optional; with a header, the column named "
            "title is used, so a RecBole .item file works as it is)"
        )

    class DatasetItemTitlesOutputSerializer(serializers.Serializer):
        titles = serializers.IntegerField(help_text="items of the dataset that now have a title")
        rows = serializers.IntegerField()
        unknown = serializers.IntegerField(help_text="rows whose id is no item of this dataset (left out)")
        cut = serializers.IntegerField(help_text="titles cut at 200 characters")
        duplicates = serializers.IntegerField()
        empty = serializers.IntegerField()
        source = serializers.CharField()

    @extend_schema(request=DatasetItemTitlesInputSerializer, responses=DatasetItemTitlesOutputSerializer)
    def post(self, request: Request, dataset_id: int) -> Response:
        """Upload item titles for a ready dataset (replacing earlier ones); try-it shows them."""
        dataset = dataset_get(user=request.user, dataset_id=dataset_id, action=CHANGE)
        if upload_too_large(request._request):
            raise PayloadTooLargeError("the file is larger than the upload limit")
        serializer = self.DatasetItemTitlesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        summary = dataset_item_titles_set(dataset=dataset, upload=serializer.validated_data["file"])
        return Response(self.DatasetItemTitlesOutputSerializer(summary).data)
