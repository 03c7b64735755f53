"""Datasets the studio writes: preference pairs from runs, versioned in the store."""
