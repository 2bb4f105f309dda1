"""The README's copy-paste examples, as files the tests run (tests/test_dask.py)."""
