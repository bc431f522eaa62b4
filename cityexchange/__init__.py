"""Entrypoints: settings, the composition root (app.py), the CLI and the embedded database."""
