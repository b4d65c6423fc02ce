"""The Data Refinery Django project: settings, URLs and the WSGI entry point."""
