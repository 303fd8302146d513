"""The users plug-in: accounts, tokens, profiles and the social graph.

Routes live under ``/api/v1/auth``, ``/api/v1/users`` and ``/api/v1/profiles``; data lives in
the plug-in's own database (``users.db``). The hooks are in :mod:`fittracker_plugins.users.plugin`.
"""

__version__ = "0.1.0"
