"""The scoring API and the web page for credit staff (FastAPI); uses ``models`` and ``features``."""
