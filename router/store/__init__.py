"""The Redis store: every key and script the web tier and the workers share."""
