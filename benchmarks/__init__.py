"""Performance benchmarks (not tests): `python -m benchmarks [cli|verdict|loop|ensemble|all]`.

Every benchmark measures ratios side by side in one run on the same machine; absolute times
depend on the machine and its load, so the printed table says where it ran.
"""
