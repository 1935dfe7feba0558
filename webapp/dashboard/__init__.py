"""Server-rendered pages (session login) calling the same services and selectors as the API."""
