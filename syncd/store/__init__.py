"""The store: the SQLite catalog (all SQL lives here)."""
