"""Use cases, one module per family; each takes `now` and commits once."""
