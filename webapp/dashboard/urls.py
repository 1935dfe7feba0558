from django.contrib.auth import views as auth_views
from django.urls import path

from webapp.dashboard import views

app_name = "dashboard"

urlpatterns = [
    # pages
    path("", views.home, name="home"),
    path("datasets/", views.datasets, name="datasets"),
    path("datasets/<int:dataset_id>/", views.dataset, name="dataset"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/table", views.jobs_table, name="jobs-table"),
    path("jobs/<int:job_id>/", views.job, name="job"),
    path("jobs/<int:job_id>/summary", views.job_summary, name="job-summary"),
    path("compare/", views.compare, name="compare"),
    path("versions/", views.versions, name="versions"),
    path("versions/<int:version_id>/", views.version, name="version"),
    path("versions/<int:version_id>/files/<str:name>", views.version_file, name="version-file"),
    path("versions/<int:version_id>/activate/confirm", views.version_confirm, name="version-confirm"),
    path("try/", views.try_it, name="try"),
    path("login/", auth_views.LoginView.as_view(template_name="dashboard/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # actions (POST, then back to the page with a message)
    path("datasets/upload", views.dataset_upload, name="dataset-upload"),
    path("datasets/<int:dataset_id>/parse", views.dataset_parse, name="dataset-parse"),
    path("datasets/<int:dataset_id>/retrain", views.dataset_retrain, name="dataset-retrain"),
    path("datasets/<int:dataset_id>/rollback", views.dataset_rollback, name="dataset-rollback"),
    path("datasets/<int:dataset_id>/items", views.dataset_items, name="dataset-items"),
    path("jobs/create", views.job_create, name="job-create"),
    path("jobs/<int:job_id>/cancel", views.job_cancel, name="job-cancel"),
    path("versions/<int:version_id>/activate", views.version_activate, name="version-activate"),
    path("versions/<int:version_id>/retrain", views.version_retrain, name="version-retrain"),
]
