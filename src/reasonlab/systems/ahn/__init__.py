"""AHN — Artificial Hippocampus Networks (arXiv 2510.07318): sliding-window attention plus a recurrent memory."""
