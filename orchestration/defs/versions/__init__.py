"""Data versions: lake maintenance that keeps every publish answerable (compaction, snapshot expiry)."""
