"""Greedy generation over an ONNX export: batched, left-padded, resumable, token-id sliced."""
