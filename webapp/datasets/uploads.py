"""Upload handling: every uploaded file streams to a temporary file, and stops at the size limit.

Django's default keeps small uploads in memory; this handler always writes to disk (settings set
``FILE_UPLOAD_MAX_MEMORY_SIZE = 0``) and refuses to store more than ``STUDIO_UPLOAD_MAX_BYTES``:
past the limit it stops storing, drains the rest of the request, and flags the request so the view
answers 413 with the limit in words.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.http import HttpRequest

TOO_LARGE_FLAG = "studio_upload_too_large"


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """A temporary-file upload handler with a size limit, which knows whether its file arrived whole."""

    received_whole = True  # no file started yet

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received_whole = False

    def file_complete(self, file_size: int):
        self.received_whole = True
        return super().file_complete(file_size)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > settings.STUDIO_UPLOAD_MAX_BYTES:
            if self.request is not None:
                setattr(self.request, TOO_LARGE_FLAG, True)
            raise StopUpload(connection_reset=False)
        return super().receive_data_chunk(raw_data, start)


def upload_too_large(request: HttpRequest) -> bool:
    """Whether the handler stopped an upload of this request at the size limit."""
    return bool(getattr(request, TOO_LARGE_FLAG, False))


class UploadCleanupMiddleware:
    """Removes the temporary file of an upload that did not arrive whole.

    Django deletes a half-received upload only when its stream ends cleanly; a client that goes
    away mid-upload raises inside the parser instead, wherever the body was first read (the CSRF
    check, a view), and the file would stay in the temporary folder. This runs after every request.
    """

    def __init__(self, get_response: Callable[[HttpRequest], object]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> object:
        try:
            return self.get_response(request)
        finally:
            for handler in getattr(request, "_upload_handlers", None) or []:
                if isinstance(handler, LimitedTemporaryFileUploadHandler) and not handler.received_whole:
                    handler.upload_interrupted()
