"""Places files are written to and read from, behind one `Destination` interface."""

from exporter_pipeline.destinations.base import Destination, ObjectInfo, destination_from_url

__all__ = ["Destination", "ObjectInfo", "destination_from_url"]
