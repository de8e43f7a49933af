"""Writes of insights: clustering runs (clustering.py) and the model scores it puts on
customers (scores.py, the one writer of the model-owned metric columns)."""
