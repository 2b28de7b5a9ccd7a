"""Delivery: manifests seen in the bucket, signed webhooks (Standard Webhooks) and email."""
