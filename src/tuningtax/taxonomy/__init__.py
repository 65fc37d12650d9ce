"""Failure taxonomy: rule-based categories for failed samples, a labelling guide (LABELLING.md) for hand
labels, and inter-rater agreement."""
