"""Settings modules: ``base`` (shared), ``local`` (default), ``production`` and ``test``."""
