"""Customer data in, point-in-time features and labels out.

Owns the canonical data contract (``schemas``), readers and writers (``io``), the synthetic book
(``synthetic``) and real-data adapters (``adapters``), the feature catalog (``catalog``), the
feature families (``repayment``, ``financial``, ``customer``, ``events``, ``market``), labels and
snapshots. Imports nothing from ``models``, ``pipelines`` or ``serve``.
"""
