"""Model versions per dataset (one active), activation and rollback, and serving the active one."""
