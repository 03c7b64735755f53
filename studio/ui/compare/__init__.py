"""Compare tab: a grid of models × templates × shots × seeds, streamed, stored and read back."""
