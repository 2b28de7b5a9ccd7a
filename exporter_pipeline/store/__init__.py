"""The definitions store: outputs and exports in a database (SQLAlchemy, Alembic)."""
