"""Cross-cutting HTTP: middlewares every plug-in gets, and helpers for handlers."""

from fittracker.http.body import parse_model, read_json, read_model, read_query
from fittracker.http.responses import json_response, no_content

__all__ = ["json_response", "no_content", "parse_model", "read_json", "read_model", "read_query"]
