from django.contrib.auth import views as auth_views
from django.urls import path

from webapp.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(template_name="dashboard/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("datasets/upload", views.dataset_upload, name="dataset-upload"),
    path("datasets/<int:dataset_id>/parse", views.dataset_parse, name="dataset-parse"),
    path("jobs/create", views.job_create, name="job-create"),
    path("jobs/<int:job_id>/cancel", views.job_cancel, name="job-cancel"),
    path("versions/<int:version_id>/activate", views.version_activate, name="version-activate"),
]
