"""Admin for training jobs (cancel, resume) and their curve points (read-only)."""

from django.contrib import admin

from webapp.core.admin_actions import run_for_each
from webapp.training.models import TrainingJob, TrainingPoint
from webapp.training.services import training_job_cancel, training_job_resume


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "dataset",
        "owner",
        "status",
        "base_version",
        "attempts",
        "heartbeat_at",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("dataset", "owner", "base_version")
    readonly_fields = (
        "status",
        "base_version",
        "progress",
        "stages",
        "metrics",
        "error",
        "worker",
        "attempts",
        "heartbeat_at",
        "started_at",
        "finished_at",
    )
    actions = ("cancel", "resume")

    @admin.action(
        description="Cancel the selected jobs (running ones stop after their current step)",
        permissions=["change"],
    )
    def cancel(self, request, queryset):
        run_for_each(self, request, queryset, lambda job: training_job_cancel(job=job), "cancelled")

    @admin.action(
        description="Resume the selected failed jobs after their last finished stage", permissions=["change"]
    )
    def resume(self, request, queryset):
        run_for_each(self, request, queryset, lambda job: training_job_resume(job=job), "requeued")


@admin.register(TrainingPoint)
class TrainingPointAdmin(admin.ModelAdmin):
    list_display = ("id", "job", "kind", "stage", "blocks", "step", "wall_s", "loss")
    list_filter = ("kind",)
    search_fields = ("job__id",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
