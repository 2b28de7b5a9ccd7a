"""exporter_pipeline: a video-analytics export service on Dagster."""
