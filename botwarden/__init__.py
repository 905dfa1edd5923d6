"""What the agent and the bot share, and nothing else: the stack's settings (ports, paths,
program names, network, risk limits: :mod:`botwarden.settings`) and the exceptions shaped by
what the operator must do (:mod:`botwarden.errors`).

This package imports neither ``agent`` nor ``bot``: each of those imports it, so the guard and
the guarded program can be installed and reasoned about apart.
"""
