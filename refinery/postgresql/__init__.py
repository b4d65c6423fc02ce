"""Django's PostgreSQL back end, with a health check that needs no round trip
(base.py says why)."""
