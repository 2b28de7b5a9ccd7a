"""The Dagster shell: assets, jobs, schedules, sensors and resources over the pure core."""
