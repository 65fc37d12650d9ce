"""Behavioural metrics of generated code (fidelity to the hole, natural language, leaks, format)."""
