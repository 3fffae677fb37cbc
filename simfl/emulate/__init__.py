"""Emulation: a scenario's clients and server in network namespaces on shaped links (issue 12, in progress)."""
