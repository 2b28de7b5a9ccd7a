"""The code location's members, built whole only when something asks for all of them.

A code server, the webserver and the daemon list every job, asset and sensor: they get
the whole location, built once. A run worker asks for one job by name, before its first
step: an export's job is then built alone from its own definition (the same function
and resources, so the same job and snapshot as in the whole location), which costs the
same whatever the number of other exports; an export the whole location's load refuses
raises that load's messages there, so its run fails saying why. Anything else a process
asks for builds the whole location, once, and answers from it.

The whole location is built with Python's cyclic collector paused, and what was built is
then moved out of its sight (`gc.freeze`): it lives as long as the process. At 5,000
exports the collector otherwise rescans the location's millions of objects again and
again while Dagster snapshots its jobs, about a third of a code server's load time
(benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

# The repository a `Definitions` becomes; runs record it, so it keeps this name.
REPOSITORY_NAME = "__repository__"


class OnDemandRepositoryData(dg.RepositoryData):
    def __init__(
        self,
        whole: Callable[[], dg.RepositoryDefinition],
        one_job: Callable[[str], dg.JobDefinition | None],
    ) -> None:
        self._build_whole = whole
        self._build_one_job = one_job
        self._alone: dict[str, dg.JobDefinition] = {}

    @functools.cached_property
    def _whole(self) -> dg.RepositoryData:
        # A RepositoryDefinition exposes its data only as this attribute; its methods all
        # answer from it, so the whole location answers here exactly as it would alone.
        with built_for_good():
            data: dg.RepositoryData = self._build_whole()._repository_data
        return data

    def get_job(self, job_name: str) -> dg.JobDefinition:
        if "_whole" in self.__dict__:
            return self._whole.get_job(job_name)
        if job_name not in self._alone:
            job = self._build_one_job(job_name)
            if job is None:  # not an export's job, or one that does not build alone
                return self._whole.get_job(job_name)
            self._alone[job_name] = job
        return self._alone[job_name]

    def has_job(self, job_name: str) -> bool:
        return job_name in self._alone or self._whole.has_job(job_name)

    # Everything else is the whole location's.
    def get_top_level_resources(self) -> Mapping[str, Any]:
        return self._whole.get_top_level_resources()

    def get_env_vars_by_top_level_resource(self) -> Mapping[str, Any]:
        return self._whole.get_env_vars_by_top_level_resource()

    def get_all_jobs(self) -> Sequence[dg.JobDefinition]:
        return self._whole.get_all_jobs()

    def get_job_names(self) -> Sequence[str]:
        return self._whole.get_job_names()

    def get_all_schedules(self) -> Sequence[dg.ScheduleDefinition]:
        return self._whole.get_all_schedules()

    def get_schedule_names(self) -> Sequence[str]:
        return self._whole.get_schedule_names()

    def get_schedule(self, schedule_name: str) -> dg.ScheduleDefinition:
        return self._whole.get_schedule(schedule_name)

    def has_schedule(self, schedule_name: str) -> bool:
        return self._whole.has_schedule(schedule_name)

    def get_all_sensors(self) -> Sequence[dg.SensorDefinition]:
        return self._whole.get_all_sensors()

    def get_sensor_names(self) -> Sequence[str]:
        return self._whole.get_sensor_names()

    def get_sensor(self, sensor_name: str) -> dg.SensorDefinition:
        return self._whole.get_sensor(sensor_name)

    def has_sensor(self, sensor_name: str) -> bool:
        return self._whole.has_sensor(sensor_name)

    def get_source_assets_by_key(self) -> Mapping[dg.AssetKey, dg.SourceAsset]:
        return self._whole.get_source_assets_by_key()

    def get_assets_defs_by_key(self) -> Mapping[dg.AssetKey, dg.AssetsDefinition]:
        return self._whole.get_assets_defs_by_key()

    def get_asset_checks_defs_by_key(self) -> Mapping[Any, Any]:
        return self._whole.get_asset_checks_defs_by_key()

    def get_component_tree(self) -> Any:
        return self._whole.get_component_tree()

    def get_asset_job_nodes(self) -> Sequence[Any]:
        return self._whole.get_asset_job_nodes()

    def load_all_definitions(self) -> None:
        self._whole.load_all_definitions()


@contextlib.contextmanager
def built_for_good() -> Iterator[None]:
    """Build with the cyclic collector paused; once built, free the build's own cyclic
    garbage (one collection) and freeze the rest, which the process keeps to its end."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
    gc.collect()
    gc.freeze()


def on_demand_location(
    whole: Callable[[], dg.Definitions], one_job: Callable[[str], dg.JobDefinition | None]
) -> dg.RepositoryDefinition:
    """The code location as Dagster loads it: `whole` built at the first question that
    needs it, an export's job alone when that is all a process asks for."""
    return dg.RepositoryDefinition(
        REPOSITORY_NAME,
        repository_data=OnDemandRepositoryData(lambda: whole().get_repository_def(), one_job),
    )
