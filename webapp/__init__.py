"""The Django web app: uploads, training jobs, model registry, REST API and dashboard."""
