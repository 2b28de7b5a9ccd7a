"""The store's own state, one row: when it was seeded (first given definitions), so the
code location seeds it from EXPORTER_EXPORTS_FILE once, never again once emptied.

A store that already holds outputs or exports was seeded (by the file, or applied): it is
recorded so, now. An empty one is not: its next load seeds it, as before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-17
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    state = op.create_table(
        "store_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_store_state"),
    )
    held = (
        op.get_bind()
        .execute(
            sa.select(
                sa.exists(sa.select(sa.text("1")).select_from(sa.table("outputs")))
                | sa.exists(sa.select(sa.text("1")).select_from(sa.table("exports")))
            )
        )
        .scalar()
    )
    op.bulk_insert(state, [{"id": 1, "seeded_at": datetime.now(UTC) if held else None}])


def downgrade() -> None:
    op.drop_table("store_state")
