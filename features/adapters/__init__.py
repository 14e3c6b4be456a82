"""Adapters that map real credit datasets into the canonical tables (see README.md here)."""
