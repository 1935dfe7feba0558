from django.contrib.auth import views as auth_views
from django.urls import path

from webapp.dashboard.views import datasets, job_page, overview, runs, training, try_it, versions

app_name = "dashboard"

urlpatterns = [
    # pages
    path("", overview.home, name="home"),
    path("datasets/", datasets.datasets, name="datasets"),
    path("datasets/<int:dataset_id>/", datasets.dataset, name="dataset"),
    path("jobs/", runs.jobs, name="jobs"),
    path("jobs/table", runs.jobs_table, name="jobs-table"),
    path("jobs/<int:job_id>/", job_page.job, name="job"),
    path("jobs/<int:job_id>/summary", job_page.job_summary, name="job-summary"),
    path("jobs/<int:job_id>/log", job_page.job_log, name="job-log"),
    path("compare/", runs.compare, name="compare"),
    path("versions/", versions.versions, name="versions"),
    path("versions/<int:version_id>/", versions.version, name="version"),
    path("versions/<int:version_id>/files/<str:name>", versions.version_file, name="version-file"),
    path("versions/<int:version_id>/activate/confirm", versions.version_confirm, name="version-confirm"),
    path("try/", try_it.try_it, name="try"),
    path("login/", auth_views.LoginView.as_view(template_name="dashboard/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # actions (POST, then back to the page with a message)
    path("datasets/upload", datasets.dataset_upload, name="dataset-upload"),
    path("datasets/<int:dataset_id>/parse", datasets.dataset_parse, name="dataset-parse"),
    path("datasets/<int:dataset_id>/retrain", datasets.dataset_retrain, name="dataset-retrain"),
    path("datasets/<int:dataset_id>/rollback", datasets.dataset_rollback, name="dataset-rollback"),
    path("datasets/<int:dataset_id>/items", datasets.dataset_items, name="dataset-items"),
    path("jobs/create", training.job_create, name="job-create"),
    path("jobs/<int:job_id>/cancel", job_page.job_cancel, name="job-cancel"),
    path("versions/<int:version_id>/activate", versions.version_activate, name="version-activate"),
    path("versions/<int:version_id>/retrain", versions.version_retrain, name="version-retrain"),
]
