"""Upload handling: every uploaded file streams to a temporary file, and stops at the size limit.

Django's default keeps small uploads in memory; this handler always writes to disk (settings set
``FILE_UPLOAD_MAX_MEMORY_SIZE = 0``) and refuses to store more than ``STUDIO_UPLOAD_MAX_BYTES``:
past the limit it stops storing, drains the rest of the request, and flags the request so the view
answers 413 with the limit in words.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

TOO_LARGE_FLAG = "studio_upload_too_large"


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """A temporary-file upload handler with a size limit."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > settings.STUDIO_UPLOAD_MAX_BYTES:
            if self.request is not None:
                setattr(self.request, TOO_LARGE_FLAG, True)
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def upload_too_large(request: HttpRequest) -> bool:
    """Whether the handler stopped an upload of this request at the size limit."""
    return bool(getattr(request, TOO_LARGE_FLAG, False))
