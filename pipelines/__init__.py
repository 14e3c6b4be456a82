"""Prefect flows, the command line, credit policy, early warnings and the results store.

Wires ``features`` and ``models`` into runs: generate or read a book, validate it, build
snapshots, train and promote, score, decide and warn, and keep the results.
"""
