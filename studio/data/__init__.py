"""Datasets the studio writes: preference pairs from runs and synthetic instruction data,
versioned in the store."""
