"""The archive and what is built on it (DESIGN.md §7).

archive (SQLite, the source of truth) · vectors (ChromaDB index, rebuildable) · embeddings ·
cognition (curated entries) · notes (a user's files) · novelty and codehash (duplicates) ·
selection (parents and references). Import the submodules directly; nothing heavy is imported here.
"""
