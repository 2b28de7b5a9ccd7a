"""Right to erasure: remove one user of one tenant from everything this service holds.

1. A tombstone is recorded first, so landing files that arrive for the user from now on
   are dropped at ingest (also when an hour is re-ingested).
2. Every lake hour holding the user is rewritten without the user's rows, atomically per
   hour; so is its quarantine file, and the hour's derived data sets are recomputed from
   the rewritten raw hour. A quarantined record (the raw record as it landed, plus its
   reason) is the user's when its `user_id` is theirs and its `tenant` is theirs, missing
   or blank (a record rejected for "missing tenant" can only be the asking tenant's);
   a malformed record, which has no fields, when its text holds the user id as a JSON
   string and either the tenant as one or no `"tenant"` key at all.
3. Export windows of the tenant's exports to *managed* outputs that hold an affected
   hour and were exported before (a manifest exists) are exported again, which publishes
   their files and manifest anew (the shell then reports each window as an observation
   of its export, so the delivery sensor delivers it again).
4. In every managed output the tenant may use, what nothing regenerates is found by its
   manifests (`published.py`): the tenant's on-demand tasks (also those written in a
   definition export's folder) are published again without the user's rows, and the
   user's own data exports are removed.
5. An audit entry records who asked, when, the partitions touched and the rows removed
   from each place; it names the subject only by its salted hash.

Not reached (and listed in the audit entry): an export whose files have no column naming
the user, outputs we do not manage, a window whose export has a run in progress (erase
again once it ends), copies receivers made of delivered files, and the landing files
themselves: they are the operator's (retention never removes them), so the operator
removes or rewrites them; their records are dropped by the tombstone whenever they are
read.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from exporter_pipeline.derived.delivery_metrics import delivery_metrics
from exporter_pipeline.derived.view_segments import view_segments
from exporter_pipeline.destinations import Destination
from exporter_pipeline.errors import ExporterError
from exporter_pipeline.exports.catalog import DATASETS
from exporter_pipeline.exports.execution import export_window
from exporter_pipeline.exports.manifest import Manifest
from exporter_pipeline.exports.naming import manifest_key
from exporter_pipeline.exports.spec import ExportDefinition
from exporter_pipeline.lake import hourly_key, lake_hours, write_hourly
from exporter_pipeline.privacy.published import (
    USER_DATA,
    Published,
    PublishedIn,
    read_output,
    remove_published,
    rewrite_without_user,
    user_export_subject,
)
from exporter_pipeline.privacy.tombstones import add_tombstone, lake_salt, subject_of
from exporter_pipeline.windows import hours_of, partition_key_of, window_containing

AUDIT_FOLDER = "_privacy/audit"
# An export's destination, None when its output is not managed (and so never opened).
OutputsOf = Callable[[ExportDefinition], Destination | None]
# The audit's `rows_removed`, one count per place the product writes.
ROWS_REMOVED = (
    "raw_events",
    "raw_events_quarantine",
    "view_segments",
    "definition_exports",
    "on_demand_exports",
    "user_exports",
)
DERIVED = {"view_segments": view_segments, "delivery_metrics": delivery_metrics}


@dataclass
class ErasureReport:
    request_id: str
    subject: str
    hours: list[str] = field(default_factory=list)
    rows_removed: dict[str, int] = field(default_factory=dict)
    exports_regenerated: list[str] = field(default_factory=list)
    # (export, window start, manifest key) of each regenerated window, for the shell.
    regenerated: list[tuple[str, datetime, str]] = field(default_factory=list)
    # "<output>:<manifest key>" of on-demand tasks rewritten, user data exports removed.
    exports_rewritten: list[str] = field(default_factory=list)
    user_exports_removed: list[str] = field(default_factory=list)
    not_reached: list[str] = field(default_factory=list)
    audit_key: str = ""


def _quarantine_matches(tenant: str, user_id: str) -> pl.Expr:
    """A quarantined record of the user: its `user_id` is theirs and its tenant is theirs
    or missing (a record quarantined for "missing tenant" can only be the tenant's that
    asks). A record that is not JSON at all (malformed) is theirs when its text holds the
    user id as a JSON string and either the tenant as one or no `"tenant"` key at all."""
    record = pl.col("record")
    user = record.str.json_path_match("$.user_id").str.strip_chars()
    owner = record.str.json_path_match("$.tenant").str.strip_chars()
    parsed = (user == user_id) & (owner.is_null() | (owner == "") | (owner == tenant))
    quoted = orjson.dumps(user_id).decode()
    text = record.str.contains(quoted, literal=True) & (
        record.str.contains(orjson.dumps(tenant).decode(), literal=True)
        | ~record.str.contains('"tenant"', literal=True)
    )
    unparsed = record.str.json_path_match("$").is_null()
    return pl.when(unparsed).then(text).otherwise(parsed).fill_null(False)


def erase_user(
    lake: Destination,
    tenant: str,
    user_id: str,
    requested_by: str,
    exports: list[ExportDefinition],
    outputs: OutputsOf,
    run_id: str,
    log: Callable[[str], None] = lambda _: None,
    published: PublishedIn | None = None,
    busy: Callable[[ExportDefinition], bool] = lambda _: False,
) -> ErasureReport:
    """Erase the user; `outputs(export)` gives an export's destination if we manage it,
    `published` the managed and unmanaged outputs the tenant may use (their on-demand
    tasks and user data exports), `busy(export)` whether a run of it is in progress (its
    windows are then not regenerated: two runs of a window at once collide)."""
    salt = lake_salt(lake)
    report = ErasureReport(request_id=uuid.uuid4().hex, subject=subject_of(salt, tenant, user_id))
    add_tombstone(lake, report.subject, report.request_id)
    removed = dict.fromkeys(ROWS_REMOVED, 0)
    affected: list[datetime] = []
    # An hour whose every record was quarantined has a quarantine file and no events.
    hours = set(lake_hours(lake, "raw_events")) | set(lake_hours(lake, "raw_events_quarantine"))
    for hour in sorted(hours):
        if _erase_hour(lake, hour, tenant, user_id, removed, log):
            affected.append(hour)
    report.hours = [partition_key_of(h) for h in affected]
    report.rows_removed = removed
    regeneration = _Regeneration(report, lake, run_id, log, busy)
    for export in exports:
        if export.tenant == tenant:
            regeneration.export(export, outputs(export), affected)
    if published is not None:
        erase_from_published(report, tenant, user_id, published, exports, log)
    report.not_reached += [
        "landing files (the operator's to remove; the tombstone drops their records on ingest)",
        "copies of delivered files made by receivers",
    ]
    report.audit_key = _write_audit(lake, report, tenant, requested_by)
    return report


def _erase_hour(
    lake: Destination,
    hour: datetime,
    tenant: str,
    user_id: str,
    removed: dict[str, int],
    log: Callable[[str], None],
) -> bool:
    """Rewrite one hour without the user (events, derived, quarantine); whether it held them."""
    is_user = (pl.col("tenant") == tenant) & (pl.col("user_id") == user_id)
    raw_key = hourly_key("raw_events", hour)
    with tempfile.TemporaryDirectory(prefix="erasure-") as tmp:
        work = Path(tmp)
        count = 0
        if lake.exists(raw_key):
            raw_file = work / "raw-in.parquet"
            lake.download(raw_key, raw_file)
            count = pl.scan_parquet(raw_file).filter(is_user).select(pl.len()).collect().item()
        quarantine_count = _quarantined_count(lake, hour, tenant, user_id, work)
        if not count and not quarantine_count:
            return False
        if count:
            rewritten = work / "raw"
            rewritten.mkdir()
            write_hourly(
                lake, "raw_events", hour, pl.scan_parquet(raw_file).filter(~is_user), rewritten
            )
            removed["raw_events"] += count
            before = _segments_of_user(lake, hour, tenant, user_id)
            for dataset, transform in DERIVED.items():
                folder = work / dataset
                folder.mkdir()
                raw_now = pl.scan_parquet(rewritten / "events.parquet")
                write_hourly(lake, dataset, hour, transform(raw_now), folder)
            removed["view_segments"] += before
        if quarantine_count:
            _rewrite_quarantine(lake, hour, tenant, user_id, work)
            removed["raw_events_quarantine"] += quarantine_count
    log(f"{hour:%Y-%m-%d %H:00}: removed {count} events, {quarantine_count} quarantined")
    return True


def _quarantined_count(
    lake: Destination, hour: datetime, tenant: str, user_id: str, work: Path
) -> int:
    key = hourly_key("raw_events_quarantine", hour)
    if not lake.exists(key):
        return 0
    local = work / "quarantine-in.parquet"
    lake.download(key, local)
    return int(
        pl.scan_parquet(local)
        .filter(_quarantine_matches(tenant, user_id))
        .select(pl.len())
        .collect()
        .item()
    )


def _rewrite_quarantine(
    lake: Destination, hour: datetime, tenant: str, user_id: str, work: Path
) -> None:
    kept = pl.scan_parquet(work / "quarantine-in.parquet").filter(
        ~_quarantine_matches(tenant, user_id)
    )
    folder = work / "quarantine"
    folder.mkdir()
    _, rows, _, _ = write_hourly(lake, "raw_events_quarantine", hour, kept, folder)
    if rows == 0:
        lake.delete(hourly_key("raw_events_quarantine", hour))


def _segments_of_user(lake: Destination, hour: datetime, tenant: str, user_id: str) -> int:
    key = hourly_key("view_segments", hour)
    if not lake.exists(key):
        return 0
    with lake.local_copy(key) as path:
        return int(
            pl.scan_parquet(path)
            .filter((pl.col("tenant") == tenant) & (pl.col("user_id") == user_id))
            .select(pl.len())
            .collect()
            .item()
        )


@dataclass
class _Regeneration:
    """Definition export windows holding an affected hour, exported again."""

    report: ErasureReport
    lake: Destination
    run_id: str
    log: Callable[[str], None]
    busy: Callable[[ExportDefinition], bool]

    def export(
        self, export: ExportDefinition, destination: Destination | None, affected: list[datetime]
    ) -> None:
        report = self.report
        if destination is None:
            report.not_reached.append(
                f"export {export.name}: output {export.output.name} is not managed"
            )
            return
        windows = {window_containing(export.cadence, export.start_at, hour) for hour in affected}
        exported = [
            (start, end)
            for start, end in sorted(windows)
            if destination.exists(manifest_key(export.output.path, start, end))
        ]  # a window never exported has nothing to regenerate
        if exported and self.busy(export):
            report.not_reached += [
                f"export {export.name} {start:%Y-%m-%d %H:%M}: a run of the export is in "
                "progress (erase again once it ends)"
                for start, _ in exported
            ]
            return
        for start, end in exported:
            self.window(export, destination, start, end)

    def window(
        self, export: ExportDefinition, destination: Destination, start: datetime, end: datetime
    ) -> None:
        report = self.report
        if any(
            not self.lake.exists(hourly_key(s, h))
            for h in hours_of(start, end)
            for s in DATASETS[export.dataset].sources
        ):
            report.not_reached.append(
                f"export {export.name} {start:%Y-%m-%d %H:%M}: lake hours missing"
            )
            return
        key = manifest_key(export.output.path, start, end)
        before = Manifest.from_bytes(destination.get_bytes(key)).rows
        after = export_window(export, start, end, self.lake, destination, self.run_id).rows
        report.rows_removed["definition_exports"] += before - after
        report.exports_regenerated.append(f"{export.name}:{start:%Y-%m-%dT%H:%M}")
        report.regenerated.append((export.name, start, key))
        self.log(f"re-exported {export.name} {start:%Y-%m-%d %H:%M} without the user")


def _regenerated_by(
    exports: list[ExportDefinition], tenant: str, output: str, item: Published
) -> bool:
    """Whether the manifest is a window of one of the tenant's definition exports to that
    output and folder (regeneration publishes those again). An on-demand task is not,
    even in a definition's folder: nothing regenerates its window."""
    window = item.manifest.window
    return any(
        e.tenant == tenant
        and e.name == item.manifest.export
        and e.output.name == output
        and e.output.path.strip("/") == item.folder
        and window_containing(e.cadence, e.start_at, window.start) == (window.start, window.end)
        for e in exports
    )


def erase_from_published(
    report: ErasureReport,
    tenant: str,
    user_id: str,
    published: PublishedIn,
    exports: list[ExportDefinition],
    log: Callable[[str], None],
) -> None:
    """The tenant's on-demand tasks rewritten without the user and the user's own data
    exports removed, in every managed output the tenant may use; the rest named."""
    for name, destination in sorted(published.managed.items()):
        contents = read_output(destination)
        report.not_reached += [f"{name}:{key}: unreadable manifest" for key in contents.unreadable]
        for item in contents.manifests:
            manifest, where = item.manifest, f"{name}:{item.key}"
            if manifest.tenant != tenant or _regenerated_by(exports, tenant, name, item):
                continue
            try:
                if manifest.dataset == USER_DATA:
                    if user_export_subject(destination, item) == user_id:
                        remove_published(destination, item)
                        report.rows_removed["user_exports"] += manifest.rows
                        report.user_exports_removed.append(where)
                        log(f"removed the user's data export {where}")
                    continue
                gone = rewrite_without_user(destination, item, user_id)
            except FileNotFoundError:
                report.not_reached.append(
                    f"export {manifest.export} ({where}): a file it lists is missing"
                )
                continue
            except ExporterError as error:  # files not named as an export's
                report.not_reached.append(f"export {manifest.export} ({where}): {error}")
                continue
            if gone is None:
                report.not_reached.append(
                    f"export {manifest.export} ({where}): its files have no user_id or "
                    "viewer_identifier column"
                )
            elif gone:
                report.rows_removed["on_demand_exports"] += gone
                report.exports_rewritten.append(where)
                log(f"rewrote {where} without the user's {gone} rows")
    report.not_reached += [
        f"output {name}: not managed (on-demand and user data exports there)"
        for name in sorted(published.unmanaged)
    ]


def _write_audit(lake: Destination, report: ErasureReport, tenant: str, requested_by: str) -> str:
    now = datetime.now(UTC)
    entry: dict[str, Any] = {
        "request_id": report.request_id,
        "requested_by": requested_by,
        "requested_at": now.isoformat(),
        "tenant": tenant,
        "subject": report.subject,
        "partitions": report.hours,
        "rows_removed": report.rows_removed,
        "exports_regenerated": report.exports_regenerated,
        "exports_rewritten": report.exports_rewritten,
        "user_exports_removed": report.user_exports_removed,
        "not_reached": report.not_reached,
    }
    key = f"{AUDIT_FOLDER}/{now:%Y%m%dT%H%M%S}-{report.request_id}.json"
    lake.put_bytes(orjson.dumps(entry, option=orjson.OPT_INDENT_2), key)
    return key
