"""Dagster's own floor for a location of N partitioned asset jobs: the code location that
`benchmarks/load.py --floor` loads beside the product's.

    FLOOR_JOBS=5000 dagster definitions validate -f benchmarks/dagster_floor.py

Each job is the least an export could be: one daily-partitioned asset that does nothing,
with no dependency, check, metadata, tag, schedule or resource, and its own job, resolved
alone as the product resolves its export jobs (resolved together, N jobs cost N²). What
such a location costs to load is what any design with one Dagster job per export pays
before doing anything of its own.
"""

from __future__ import annotations

import os

import dagster as dg

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


def minimal_export(number: int) -> tuple[dg.AssetsDefinition, dg.JobDefinition]:
    @dg.asset(name=f"export_{number:05d}", partitions_def=DAYS)
    def export() -> None:
        return None

    job = dg.define_asset_job(f"export_{number:05d}_job", selection=[export.key])
    alone = dg.Definitions(assets=[export], jobs=[job], executor=dg.in_process_executor)
    return export, alone.resolve_job_def(job.name)


def floor_definitions(jobs: int) -> dg.Definitions:
    built = [minimal_export(number) for number in range(jobs)]
    return dg.Definitions(
        assets=[asset for asset, _ in built],
        jobs=[job for _, job in built],
        executor=dg.in_process_executor,
    )


defs = floor_definitions(int(os.environ.get("FLOOR_JOBS", "40")))
