"""The error hierarchy: retry policy is decided by an error's type, not by parsing text."""

from __future__ import annotations


class ExporterError(Exception):
    """Base of every error this package raises on purpose."""


class DefinitionError(ExporterError):
    """An export definitions file is invalid; the message names file, export and field."""


class DestinationError(ExporterError):
    """A bucket or folder operation failed."""


class RetryableDestinationError(DestinationError):
    """A passing fault (timeout, 5xx, throttling): the same call may succeed later."""


class PermanentDestinationError(DestinationError):
    """Bad credentials, missing bucket, access denied: retrying cannot help."""


def reason_of(error: Exception) -> str:
    """What to say of an output that failed: our own errors and OS errors say what was
    wrong without secrets; an SDK's text might hold one, so only its kind is told."""
    return str(error) if isinstance(error, ExporterError | OSError) else type(error).__name__
