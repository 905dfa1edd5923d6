"""The ``agent`` command. Each sub-command lives in its own module; options are defined once
in :mod:`agent.cli.options`."""
