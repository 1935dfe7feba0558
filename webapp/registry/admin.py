from django.contrib import admin, messages

from webapp.core.exceptions import ApplicationError
from webapp.registry.models import ModelVersion
from webapp.registry.services import model_version_activate


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "number", "model_name", "depth", "method", "is_active", "created_at")
    list_filter = ("is_active", "model_name", "method")
    readonly_fields = ("is_active", "activated_at")
    actions = ("activate",)

    @admin.action(description="Activate the selected version (rollback: activate an older one)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "select exactly one version to activate", messages.ERROR)
            return
        try:
            version = model_version_activate(version=queryset.get())
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, f"{version.label} is now active")
