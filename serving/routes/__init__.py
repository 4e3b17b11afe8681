"""One router per concern of the HTTP API: ingest, players (profiles and predictions), operations."""
