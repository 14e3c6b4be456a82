"""One function per use case, with typed inputs and results, raising `pipelines.errors` kinds.

The CLI, the Prefect tasks and the API are thin callers of these; nothing here prints, reads the
environment or imports the CLI or the flows. Long work reports progress through a `Step` callback.
"""

from collections.abc import Callable

Step = Callable[[str], None]


def silent(_: str) -> None:
    """The `Step` of callers that show no progress."""
