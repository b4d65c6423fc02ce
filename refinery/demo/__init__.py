"""Offline, deterministic stand-ins for external sources (demo data, test servers)."""
