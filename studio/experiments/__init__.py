"""The Experiments tab's engine: one list of every run and adapter, opening, comparing,
exporting, bundling and re-running them. The UI (studio/ui/experiments/) and `studio runs`
call these functions; the SQL lives in studio.store.experiments."""
