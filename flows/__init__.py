"""Prefect flows: thin wiring of toothmcl_data / toothmcl_models calls into tasks (curation, training)."""
