"""Benchmarks of fld-engine: engine overhead, stage profile, streaming memory, writer, GPU packing.

Run ``python -m bench <scenario>`` (``python -m bench --help`` lists them); each scenario prints a
table and writes its result as JSON under ``bench/results/``.
"""
