"""tuningtax: measure what instruction tuning costs a code model (Flow vs Command)."""

__version__ = "0.1.0"
