"""Analysis: paired statistics of the instruction-tuning tax, computed from per-task outcomes."""
