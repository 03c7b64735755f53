"""Alembic migration scripts of the experiment store (run by studio.store.migrate)."""
