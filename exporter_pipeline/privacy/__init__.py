"""Privacy: a user's data export (GDPR/CCPA), erasure with tombstones, and retention."""
