"""Lookup columns for the rules across entries (`store/neighbours.py`): each output's
place and Dagster name, each export's Dagster name and output path, filled in for the
rows already stored.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-17
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from exporter_pipeline.names import dagster_name
from exporter_pipeline.store.places import export_path_key, output_place

# Prefix lookups use these indexes on PostgreSQL whatever the collation (models.py).
PREFIX_OPS = "text_pattern_ops"

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTPUTS = sa.table(
    "outputs",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("type", sa.String),
    sa.column("settings", sa.JSON),
    sa.column("place", sa.Text),
    sa.column("dagster_name", sa.String),
)
EXPORTS = sa.table(
    "exports",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("definition", sa.JSON),
    sa.column("dagster_name", sa.String),
    sa.column("output_path", sa.Text),
)


def upgrade() -> None:
    op.add_column("outputs", sa.Column("place", sa.Text(), nullable=True))
    op.add_column(
        "outputs", sa.Column("dagster_name", sa.String(63), nullable=False, server_default="")
    )
    op.create_index("ix_outputs_place", "outputs", ["place"], postgresql_ops={"place": PREFIX_OPS})
    op.create_index("ix_outputs_dagster_name", "outputs", ["dagster_name"])
    op.add_column(
        "exports", sa.Column("dagster_name", sa.String(63), nullable=False, server_default="")
    )
    op.add_column("exports", sa.Column("output_path", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_exports_dagster_name", "exports", ["dagster_name"])
    op.create_index(
        "ix_exports_output_name_path",
        "exports",
        ["output_name", "output_path"],
        postgresql_ops={"output_path": PREFIX_OPS},
    )
    _fill(op.get_bind())


def _fill(bind: sa.Connection) -> None:
    """The new columns of the rows already stored, as the store writes them."""
    outputs = sa.select(OUTPUTS.c.id, OUTPUTS.c.name, OUTPUTS.c.type, OUTPUTS.c.settings)
    for output in bind.execute(outputs).all():
        bind.execute(
            OUTPUTS.update()
            .where(OUTPUTS.c.id == output.id)
            .values(
                place=output_place(output.type, output.settings or {}),
                dagster_name=dagster_name(output.name),
            )
        )
    exports = sa.select(EXPORTS.c.id, EXPORTS.c.name, EXPORTS.c.definition)
    for export in bind.execute(exports).all():
        bind.execute(
            EXPORTS.update()
            .where(EXPORTS.c.id == export.id)
            .values(
                dagster_name=dagster_name(export.name),
                output_path=export_path_key(export.definition),
            )
        )


def downgrade() -> None:
    # SQLite drops a column only by rebuilding the table: a batch does that there.
    with op.batch_alter_table("exports") as batch:
        batch.drop_index("ix_exports_output_name_path")
        batch.drop_index("ix_exports_dagster_name")
        batch.drop_column("output_path")
        batch.drop_column("dagster_name")
    with op.batch_alter_table("outputs") as batch:
        batch.drop_index("ix_outputs_dagster_name")
        batch.drop_index("ix_outputs_place")
        batch.drop_column("dagster_name")
        batch.drop_column("place")
