"""An execution's progress in Dagster: the run's tag `progress` (0-100, shown with the
run in the UI and read by the HTTP API) and a log line, per report of
`exports.run_progress.RunProgress`."""

import dagster as dg

from exporter_pipeline.exports.run_progress import PROGRESS_TAG, Report, RunProgress


def run_progress(
    context: dg.AssetExecutionContext | dg.OpExecutionContext, windows: int
) -> RunProgress:
    def report(percent: int, text: str) -> None:
        context.instance.add_run_tags(context.run_id, {PROGRESS_TAG: str(percent)})
        context.log.info(f"progress {percent}%: {text}")

    reporter: Report = report
    return RunProgress(windows, reporter)
