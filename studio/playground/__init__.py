"""The Playground engine: one prompt to one or several models, streamed, kept as history."""
