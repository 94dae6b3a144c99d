"""EligibilityService end-to-end tests (gRPC + Stedi stand-in + SQLite/PostgreSQL)."""
