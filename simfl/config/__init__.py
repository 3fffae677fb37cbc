"""Scenario and data-file schemas and their loading."""
