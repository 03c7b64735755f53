"""Migration revisions, one file each, numbered NNNN_name.py with revision id "NNNN_name"."""
