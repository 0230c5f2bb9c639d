"""Storage: SQLAlchemy 2.x async tables, repositories and migrations; it owns every query."""
