"""The demos' input data, generated locally (no network): a Mapterhorn-style source and a small US state.

Not part of the runtime package: only the demo rules, the tests and the benchmarks import it.
"""
