"""Test support shared by the tests and the benchmark scripts (never imported by the workflow)."""
