"""Email delivery over SMTP: a readable message with the export, window, rows and links."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def ready_message(payload: dict[str, Any], sender: str, to: list[str]) -> EmailMessage:
    window = payload["window"]
    files = payload["files"]
    rows = sum(f["rows"] for f in files)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = (
        f"Export {payload['export']} is ready: {window['start']} to {window['end']}"
    )
    lines = [
        f"Your export {payload['export']} (tenant {payload['tenant']}) is ready.",
        "",
        f"Window: {window['start']} to {window['end']}",
        f"Rows:   {rows}",
        f"Files:  {len(files)}",
        "",
        "Download links (valid for 7 days):",
    ]
    for entry in files:
        lines.append(
            f"- {entry['key']} ({entry['rows']} rows, {_size(entry['bytes'])}, "
            f"sha256 {entry['sha256']})"
        )
        lines.append(f"  {entry['url']}")
    lines += ["", f"Manifest: {payload['manifest']}"]
    message.set_content("\n".join(lines) + "\n")
    return message


def failed_message(payload: dict[str, Any], sender: str, to: list[str]) -> EmailMessage:
    window = payload["window"]
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = f"Export {payload['export']} failed: {window['start']} to {window['end']}"
    message.set_content(
        f"The export {payload['export']} (tenant {payload['tenant']}) failed for the window "
        f"{window['start']} to {window['end']}.\n\nReason: {payload['error']}\n\n"
        "No file of that window was published by the failed run. It will be delivered "
        "when a run of the window succeeds.\n"
    )
    return message
