"""Output credentials stored encrypted: one Fernet token per output (cryptography's
Fernet: AES-128-CBC with an HMAC-SHA256, keyed by `EXPORTER_SECRET_KEY`).

Every error here names the output and the setting, never a value or the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from exporter_pipeline.errors import DefinitionError, PermanentDestinationError


def _fernet(key: str, output: str, error: type[Exception]) -> Fernet:
    if not key:
        raise error(
            f"output {output!r} has stored credentials: EXPORTER_SECRET_KEY must be set "
            "(a Fernet key: exporter-pipeline definitions new-key prints one)"
        )
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise error(
            "EXPORTER_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def new_key() -> str:
    return Fernet.generate_key().decode()


def encrypt(key: str, output: str, values: Mapping[str, str]) -> bytes:
    """The credentials of `output` as one token; a DefinitionError without a usable key."""
    return _fernet(key, output, DefinitionError).encrypt(json.dumps(dict(values)).encode())


def decrypt(key: str, output: str, token: bytes) -> dict[str, str]:
    """The credentials of `output`; a PermanentDestinationError (its run fails, naming the
    output) when the key is missing or is not the one they were stored with."""
    fernet = _fernet(key, output, PermanentDestinationError)
    try:
        values: dict[str, str] = json.loads(fernet.decrypt(token))
    except InvalidToken:
        raise PermanentDestinationError(
            f"output {output!r}: EXPORTER_SECRET_KEY does not decrypt its stored credentials "
            "(stored with another key?)"
        ) from None
    return values
