"""Validation of every intermediate with its Great Expectations suite (validation/suites/)."""
