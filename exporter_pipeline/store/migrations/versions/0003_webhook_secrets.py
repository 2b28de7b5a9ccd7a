"""The webhook signing secret an export's definition leaves to the store, encrypted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("exports", sa.Column("webhook_secret", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column only by rebuilding the table: a batch does that there.
    with op.batch_alter_table("exports") as batch:
        batch.drop_column("webhook_secret")
