"""Development tooling for `make run`: the supervisor and the embedded Redis (not needed in production)."""
