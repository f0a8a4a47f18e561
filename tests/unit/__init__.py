"""Unit tests: pure functions and classes in this process; no Ray, no model loaded, no server or browser."""
