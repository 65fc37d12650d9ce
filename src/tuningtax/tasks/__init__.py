"""Benchmarks as task JSONL in one schema (see tuningtax.tasks.schema)."""
