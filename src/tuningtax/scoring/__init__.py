"""Scores: the gold gate, pass@k and the scores table."""
