"""Email delivery over SMTP: a readable message with the export, window, rows and links."""

from __future__ import annotations

from email.message import EmailMessage

from exporter_pipeline.delivery.notices import FailedNotice, ReadyNotice
from exporter_pipeline.exports.manifest import iso


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def ready_message(notice: ReadyNotice, sender: str, to: list[str]) -> EmailMessage:
    start, end = iso(notice.window.start), iso(notice.window.end)
    files = notice.files
    rows = sum(f.rows for f in files)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = f"Export {notice.export} is ready: {start} to {end}"
    lines = [
        f"Your export {notice.export} (tenant {notice.tenant}) is ready.",
        "",
        f"Window: {start} to {end}",
        f"Rows:   {rows}",
        f"Files:  {len(files)}",
        "",
        "Download links (valid for 7 days):",
    ]
    for entry in files:
        lines.append(
            f"- {entry.key} ({entry.rows} rows, {_size(entry.bytes)}, sha256 {entry.sha256})"
        )
        lines.append(f"  {entry.url}")
    lines += [
        "",
        f"Manifest: {notice.manifest}",
        f"  {notice.manifest_url}",
        f"Run: {notice.run_id}",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def failed_message(notice: FailedNotice, sender: str, to: list[str]) -> EmailMessage:
    start, end = iso(notice.window.start), iso(notice.window.end)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = f"Export {notice.export} failed: {start} to {end}"
    message.set_content(
        f"The export {notice.export} (tenant {notice.tenant}) failed for the window "
        f"{start} to {end}.\n\nReason: {notice.error}\n\n"
        "No file of that window was published by the failed run. It will be delivered "
        "when a run of the window succeeds.\n"
    )
    return message
