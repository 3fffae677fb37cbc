"""Federated-learning pieces that need no simulator: data partitioning (and, later, real training)."""
