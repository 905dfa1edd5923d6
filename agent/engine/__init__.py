"""The engine: evaluation of results into states, scheduling, remediation."""
