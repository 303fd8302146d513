"""The notifications plug-in: a live WebSocket stream per user, an inbox, preferences and delivery."""

__version__ = "0.1.0"
