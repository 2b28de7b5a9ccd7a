"""An on-demand task launched in a shard that does not hold its tenant is refused before
anything is written: only the tenant's own shard knows the paths of its exports, which a
task may not write into."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from exporter_pipeline.defs.on_demand import REFUSED_TAG
from exporter_pipeline_tests.exports.conftest import build_lake
from exporter_pipeline_tests.exports.test_export_jobs import on_demand_config
from exporter_pipeline_tests.privacy.test_privacy_shards import sha256s, shard_definitions


@pytest.mark.servers  # whole Dagster jobs (execute_in_process)
def test_a_task_in_another_tenants_shard_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    lake = build_lake(tmp_path / "data", events_per_hour=40, hours=1)
    shards = shard_definitions(tmp_path, lake)  # acme in shard 0, globex in shard 1
    before = sha256s(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    config = on_demand_config("acme", "elsewhere")
    task = config["ops"]["export_task"]["config"]
    task.update(
        output="managed", start_time="2026-10-01T00:00:00Z", end_time="2026-10-01T01:00:00Z"
    )
    job = shards[1].resolve_job_def("export_on_demand")
    result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    assert error is not None and error.cause is not None
    assert error.cause.message.splitlines()[0] == (
        "exporter_pipeline.errors.DefinitionError: export task 'typo_task' (/tenant): "
        "tenant 'acme' belongs to shard 0/2 (code location exporter_pipeline_shard_0_of_2), "
        "not to this location's shard 1/2: launch it in exporter_pipeline_shard_0_of_2, "
        "which holds the tenant's exports"
    )
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[REFUSED_TAG] == "request"
    assert sha256s(tmp_path) == before

    # Acme's own shard runs the same task.
    held = shards[0].resolve_job_def("export_on_demand")
    assert held.execute_in_process(run_config=config, instance=instance).success
    assert (tmp_path / "out" / "elsewhere" / "_manifests").is_dir()
