"""The sync core: observe (scan, hashing), decide (planner), act (executor), one pass (engine)."""
