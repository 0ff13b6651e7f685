"""Metric modules in evaluate's local form (``<name>/<name>.py``), loaded by path so they work offline."""
