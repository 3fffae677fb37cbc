"""Calibration on real hardware: torch training steps, power backends, profile writing (imports torch)."""
