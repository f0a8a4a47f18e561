"""A package of user stages, outside fld-engine: the README's custom-stage example, as the tests run it.

The tests put ``tests/support`` on ``PYTHONPATH`` and name a class as a user would: ``mypkg.detectors:BrightestBox``.
"""
