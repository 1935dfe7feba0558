from django.contrib import admin

from webapp.datasets.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "status", "size_bytes", "parent", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "original_filename")
    readonly_fields = ("status", "error", "stats", "preview", "events_file", "parsed_at", "size_bytes")
