"""Admin for model versions: activate (rollback = activate an older one) and retrain with StackRec."""

from django.contrib import admin, messages

from webapp.core.admin_actions import run_for_each
from webapp.core.exceptions import ApplicationError
from webapp.registry.models import ModelVersion
from webapp.registry.services import model_version_activate
from webapp.training.services import training_job_retrain


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "number", "model_name", "depth", "method", "is_active", "created_at")
    list_filter = ("is_active", "model_name", "method")
    list_select_related = ("dataset",)
    # A registered version never changes: its form only shows it; the actions activate it.
    readonly_fields = tuple(
        f.name for f in ModelVersion._meta.get_fields() if f.concrete and not f.auto_created
    )
    actions = ("activate", "activate_override", "retrain")

    @admin.action(
        description="Activate the selected version (rollback: activate an older one)", permissions=["change"]
    )
    def activate(self, request, queryset):
        self._activate(request, queryset, override=False)

    @admin.action(
        description="Activate the selected version although the promotion gate held it",
        permissions=["change"],
    )
    def activate_override(self, request, queryset):
        self._activate(request, queryset, override=True)

    def _activate(self, request, queryset, *, override: bool) -> None:
        if queryset.count() != 1:
            self.message_user(request, "select exactly one version to activate", messages.ERROR)
            return
        try:
            version = model_version_activate(version=queryset.get(), override=override, by=request.user)
        except ApplicationError as exc:
            hint = '; the action "Activate … although the promotion gate held it" does'
            self.message_user(request, exc.message + (hint if exc.extra.get("override_needed") else ""),
                              messages.ERROR)  # fmt: skip
            return
        self.message_user(request, f"{version.label} is now active")

    @admin.action(
        description="Retrain with StackRec: stack the version deeper, train on all the data",
        permissions=["change"],
    )
    def retrain(self, request, queryset):
        run_for_each(
            self,
            request,
            queryset,
            lambda version: training_job_retrain(owner=request.user, version=version),
            "retraining jobs queued",
        )
