"""Emulation: a scenario's rounds run for real, Flower on namespaced links shaped with tc, against simfl's prediction."""
