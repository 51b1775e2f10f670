"""Capture: sound comes in, from an input device or a file, as mono samples at the model's rate."""
