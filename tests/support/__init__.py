"""Shared test support: real processes started and torn down for tests.

* :mod:`tests.support.supervisord`: a real supervisord in a temporary directory, with a
  pytest fixture (``supervisord_factory``) any suite can import into its ``conftest.py``.
"""
