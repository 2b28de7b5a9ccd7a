"""Secrets stored encrypted: one Fernet token per output (its credentials) and per export
(its webhook's signing secret); cryptography's Fernet: AES-128-CBC with an HMAC-SHA256,
keyed by `EXPORTER_SECRET_KEY`.

Every error here names the output or export and the setting, never a value or the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cryptography.fernet import Fernet, InvalidToken

from exporter_pipeline.errors import DefinitionError, PermanentDestinationError


def _fernet(key: str, held: str, error: type[Exception]) -> Fernet:
    """The key's Fernet; `held` says what needs it ("output 'x' has stored credentials")."""
    if not key:
        raise error(
            f"{held}: EXPORTER_SECRET_KEY must be set "
            "(a Fernet key: exporter-pipeline definitions new-key prints one)"
        )
    try:
        return Fernet(key.encode())
    except (ValueError, TypeError):
        raise error(
            "EXPORTER_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None


def _open(key: str, held: str, token: bytes, whose: str, what: str) -> bytes:
    """The plaintext of `token`; a PermanentDestinationError naming `whose` `what` when the
    key is missing or is not the one it was stored with."""
    fernet = _fernet(key, held, PermanentDestinationError)
    try:
        return fernet.decrypt(token)
    except InvalidToken:
        raise PermanentDestinationError(
            f"{whose}: EXPORTER_SECRET_KEY does not decrypt its {what} (stored with another key?)"
        ) from None


def new_key() -> str:
    return Fernet.generate_key().decode()


def encrypt(key: str, output: str, values: Mapping[str, str]) -> bytes:
    """The credentials of `output` as one token; a DefinitionError without a usable key."""
    held = f"output {output!r} has stored credentials"
    return _fernet(key, held, DefinitionError).encrypt(json.dumps(dict(values)).encode())


def decrypt(key: str, output: str, token: bytes) -> dict[str, str]:
    """The credentials of `output`; a PermanentDestinationError (its run fails, naming the
    output) when the key is missing or is not the one they were stored with."""
    held = f"output {output!r} has stored credentials"
    plain = _open(key, held, token, f"output {output!r}", "stored credentials")
    values: dict[str, str] = json.loads(plain)
    return values


def _webhook_held(export: str) -> str:
    return f"export {export!r} has a stored webhook secret"


def encrypt_webhook_secret(key: str, export: str, secret: str) -> bytes:
    """The webhook secret of `export` as one token, bound to the export's name; a
    DefinitionError without a usable key."""
    plain = json.dumps({"export": export, "webhook_secret": secret}).encode()
    return _fernet(key, _webhook_held(export), DefinitionError).encrypt(plain)


def decrypt_webhook_secret(key: str, export: str, token: bytes) -> str:
    """The webhook secret of `export`; a PermanentDestinationError naming the export when
    the key is wrong or missing, or the token was stored for another export (a row's
    token copied to another row does not sign the other's webhooks)."""
    plain = _open(key, _webhook_held(export), token, f"export {export!r}", "stored webhook secret")
    values = json.loads(plain)
    if values.get("export") != export:
        raise PermanentDestinationError(
            f"export {export!r}: its stored webhook secret was stored for another export"
        )
    secret: str = values["webhook_secret"]
    return secret
