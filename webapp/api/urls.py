"""/api/v1/ routes: one thin API class per operation, plus token login, the schema and its docs page."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from webapp.api.tokens import TokenCreateApi
from webapp.datasets import apis as datasets
from webapp.registry import apis as registry
from webapp.training import apis as training

app_name = "api"

urlpatterns = [
    path("auth/token", TokenCreateApi.as_view(), name="token"),
    path("datasets", datasets.DatasetListCreateApi.as_view(), name="datasets"),
    path("datasets/<int:dataset_id>", datasets.DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<int:dataset_id>/parse", datasets.DatasetParseApi.as_view(), name="dataset-parse"),
    path(
        "datasets/<int:dataset_id>/increments",
        datasets.DatasetIncrementApi.as_view(),
        name="dataset-increment",
    ),
    path("datasets/<int:dataset_id>/items", datasets.DatasetItemTitlesApi.as_view(), name="dataset-items"),
    path(
        "datasets/<int:dataset_id>/rollback", registry.DatasetRollbackApi.as_view(), name="dataset-rollback"
    ),
    path("jobs", training.TrainingJobListCreateApi.as_view(), name="jobs"),
    path("jobs/retrain", training.TrainingJobRetrainApi.as_view(), name="job-retrain"),
    path("jobs/compare", training.TrainingJobCompareApi.as_view(), name="job-compare"),
    path("jobs/<int:job_id>", training.TrainingJobDetailApi.as_view(), name="job"),
    path("jobs/<int:job_id>/curve", training.TrainingJobCurveApi.as_view(), name="job-curve"),
    path("jobs/<int:job_id>/cancel", training.TrainingJobCancelApi.as_view(), name="job-cancel"),
    path("jobs/<int:job_id>/resume", training.TrainingJobResumeApi.as_view(), name="job-resume"),
    path("versions", registry.ModelVersionListApi.as_view(), name="versions"),
    path("versions/<int:version_id>", registry.ModelVersionDetailApi.as_view(), name="version"),
    path(
        "versions/<int:version_id>/activate",
        registry.ModelVersionActivateApi.as_view(),
        name="version-activate",
    ),
    path(
        "versions/<int:version_id>/files/<str:name>",
        registry.ModelVersionFileApi.as_view(),
        name="version-file",
    ),
    path("recommend", registry.RecommendApi.as_view(), name="recommend"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
