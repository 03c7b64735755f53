"""Experiments tab: every stored run in one list; open, annotate, compare, export, move them."""
