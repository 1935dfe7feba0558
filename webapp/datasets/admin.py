"""Admin for datasets, with the continual-learning action: retrain the active model with StackRec."""

from django.contrib import admin

from webapp.core.admin_actions import run_for_each
from webapp.datasets.models import Dataset
from webapp.training.services import training_job_retrain


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "status", "size_bytes", "parent", "created_at")
    list_filter = ("status",)
    list_select_related = ("owner", "parent")
    search_fields = ("name", "original_filename")
    readonly_fields = ("status", "error", "stats", "preview", "events_file", "parsed_at", "size_bytes")
    actions = ("retrain",)

    @admin.action(
        description="Retrain with StackRec: stack the active version deeper, train on all the data",
        permissions=["change"],  # an action, not a read: a view-only account does not see it
    )
    def retrain(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset,
            lambda dataset: training_job_retrain(owner=request.user, dataset=dataset),
            "retraining jobs queued",
        )
