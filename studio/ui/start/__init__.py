"""Start here tab: the whole loop on the project's own sample task, one button per step."""
