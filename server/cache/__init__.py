"""Shared caches (in process, or in Redis so every server process sees the same entries). Imports nothing of server."""
