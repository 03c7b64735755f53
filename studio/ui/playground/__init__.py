"""Playground tab: chat with any model, streamed and stoppable; every exchange is logged."""
