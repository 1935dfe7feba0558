# One image for every service; compose picks the command. TORCH_INDEX selects the PyTorch build:
# the CPU wheel by default, https://download.pytorch.org/whl/cu128 for the GPU worker's image.
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
ENV PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=webapp.config.settings.production \
    DJANGO_STATIC_ROOT=/app/static \
    DJANGO_MEDIA_ROOT=/data/media \
    DJANGO_VAR_DIR=/data/var \
    TRAINER_DATA_DIR=/data/datasets
COPY pyproject.toml README.md ./
COPY trainer trainer
COPY serving serving
COPY webapp webapp
COPY manage.py ./
RUN pip install --no-cache-dir torch==2.13.0 --index-url "$TORCH_INDEX" \
    && pip install --no-cache-dir .
# Static files are collected at build time and served by whitenoise from gunicorn.
RUN DJANGO_SETTINGS_MODULE=webapp.config.settings.local DJANGO_VAR_DIR=/tmp/build \
    python manage.py collectstatic --noinput
RUN useradd --create-home studio && mkdir -p /data && chown studio /data
USER studio
EXPOSE 8000
CMD ["gunicorn", "-c", "webapp/config/gunicorn.py", "webapp.config.wsgi"]
