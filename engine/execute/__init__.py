"""Executing stages on Ray Data: planning them, grouping them into steps, running chains of them."""
