"""The definitions store: outputs and exports.

Revision ID: 0001
Revises:
Create Date: 2026-10-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON()


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]  # columns of any type
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("settings", JSON_DOCUMENT, nullable=False),
        sa.Column("secrets", sa.LargeBinary(), nullable=True),
        sa.Column("secret_names", JSON_DOCUMENT, nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_outputs"),
        sa.UniqueConstraint("name", name="uq_outputs_name"),
    )
    op.create_index("ix_outputs_tenant", "outputs", ["tenant"])
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("output_name", sa.String(63), nullable=False),
        sa.Column("definition", JSON_DOCUMENT, nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_exports"),
        sa.UniqueConstraint("name", name="uq_exports_name"),
        sa.ForeignKeyConstraint(
            ["output_name"],
            ["outputs.name"],
            name="fk_exports_output_name_outputs",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_exports_tenant", "exports", ["tenant"])
    op.create_index("ix_exports_output_name", "exports", ["output_name"])


def downgrade() -> None:
    op.drop_table("exports")
    op.drop_table("outputs")
