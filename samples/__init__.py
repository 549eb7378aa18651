"""Sample district material, made by code: projects, summary tables, forms, demo mail, and ``intake demo``.

Kept apart from the pipeline (``intake``, ``parsers``, ``reports``): the worker never
imports this package; the demo and the tests do.
"""
