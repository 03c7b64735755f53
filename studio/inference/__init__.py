"""Generation (streamed, stoppable, seeded) and prompt formatting for chat and completion models."""
