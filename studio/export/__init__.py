"""Adapters out to deployment: an export (merged folder or GGUF) and its parity check, stored."""
