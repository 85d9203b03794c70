"""Immutable message structs with bounded fields; see chaincity.codec for their bytes.

Every struct here is frozen and holds only bytes, integers, text, and tuples of
these or of other such structs, so no instance can ever be part of a reference
cycle: they are declared ``gc=False``, and the hundreds of thousands that sit in
a busy node's mempool and blocks are not walked by the cycle collector
(benchmarks/execution.py: 176,000 tracked objects fall to 16,000, and the
collector's share of executing a 5,000-transaction block from 6-7 % to 4-5 %).
A new struct here must keep to that rule, or drop the flag.
"""
