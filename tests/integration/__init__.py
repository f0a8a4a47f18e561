"""Integration tests: Ray, models (tiny random-init, spaCy's pipeline, shipped ONNX and cascade weights),
external processes (an S3 server, a browser, a killed run) and whole command-line runs."""
