"""Staging files in and out of tasks: one plugin per URL scheme, shared by every backend."""
