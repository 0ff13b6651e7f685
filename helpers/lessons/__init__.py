"""Lesson scaffolding: one module per notebook that needs one. Lessons import the library (``helpers``);
the library never imports a lesson (tests/test_layers.py checks it)."""
