"""Places files are written to and read from, behind one `Destination` interface."""

from exporter_pipeline.destinations.base import Destination, ObjectInfo
from exporter_pipeline.destinations.registry import destination_from_url

__all__ = ["Destination", "ObjectInfo", "destination_from_url"]
