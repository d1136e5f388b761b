"""The recorders of tests/record_histories.py, one module per journey."""
