"""The `studio` command line: one module per sub-command; `main` is the entry point."""
