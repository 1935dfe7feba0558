"""ONNX Runtime serving of exported models (no torch, no Django)."""
