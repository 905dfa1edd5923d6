"""Check and action modules: one type per file, parameters as a typed model.

See :mod:`agent.modules.base` for the contract and :mod:`agent.modules.registry` for the
explicit registry built at start-up.
"""
