from django.contrib import admin

from webapp.training.models import TrainingJob


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "owner", "status", "attempts", "heartbeat_at", "created_at")
    list_filter = ("status",)
    readonly_fields = (
        "status",
        "progress",
        "stages",
        "metrics",
        "error",
        "worker",
        "attempts",
        "heartbeat_at",
    )
