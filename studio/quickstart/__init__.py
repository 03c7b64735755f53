"""The sample loop a new user runs first: compare, tune, compare again on bundled data."""
