"""Durable task storage (SQLAlchemy 2: SQLite by default, PostgreSQL for several replicas)."""
