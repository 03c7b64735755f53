"""Process-wide concerns: the compute thread, OpenMP waits, heap freezing."""
