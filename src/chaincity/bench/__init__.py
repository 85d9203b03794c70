"""`chaincity bench`: throughput and latency of a fresh local network under load.

``driver`` runs it end to end, ``loadgen`` is the separate load process,
``stats`` and ``report`` turn raw times into figures without any I/O.
"""
