"""Prompts tab: the template library, a YAML editor with an exact preview, versions and diffs."""
