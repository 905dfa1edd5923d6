"""The agent's bottom layer: check states and severities (:mod:`agent.core.states`), durations
and time zones (:mod:`agent.core.values`), the shapes of secrets in free text
(:mod:`agent.core.secret_shapes`). It imports nothing of the project but :mod:`botwarden`;
every other package of the agent may import it.
"""
