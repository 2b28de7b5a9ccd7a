"""Hourly data sets derived from raw events: view segments (seed 003), delivery metrics (001)."""
