"""Sensors that notice work done outside Dagster (DMS started from the console, new raw files)."""
