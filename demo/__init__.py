"""Offline, deterministic stand-ins for external sources (demo data, test servers), and
the ``manage.py demo`` command that runs the refinery's main job against them."""
