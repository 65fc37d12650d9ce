"""Models: what a model is (spec), how its family is prompted (families), where its weights come from
(offline_qwen.resolve_source), and its ONNX export with a greedy parity check (export, ort_session).

Submodules are imported explicitly: torch, transformers and onnxruntime load only where needed."""
