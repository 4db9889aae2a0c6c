"""Operator and benchmark tooling, and the root ``edgewatch`` command."""
