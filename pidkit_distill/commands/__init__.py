"""Subcommands of ``pidkit-distill``: one module each (see :mod:`pidkit_distill.cli`)."""
