"""The HTTP API v1 (DESIGN.md, HTTP API (v1)): tenants drive the service themselves."""
