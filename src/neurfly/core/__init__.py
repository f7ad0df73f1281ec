"""The pure core: specs, search spaces, strategies, scheduling. No I/O here."""
