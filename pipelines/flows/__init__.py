"""Prefect flows and their tasks: wiring only, over `pipelines.usecases`."""
