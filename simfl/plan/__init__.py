"""Capacity planning: sweeps over scenario fields, and searches for the best configuration under constraints."""
