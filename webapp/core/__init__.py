"""Shared pieces of the web app: the error type every service raises, its API rendering, base models."""
