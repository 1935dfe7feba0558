# One image for every service; compose picks the command.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1
COPY pyproject.toml README.md ./
COPY trainer trainer
COPY serving serving
COPY webapp webapp
COPY manage.py ./
# The CPU wheel; for a CUDA image use a CUDA base and the cu128 index (see README).
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir .
