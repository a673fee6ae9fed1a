"""ml_collections configs: one file per setting (``configs/papers/``: one per paper)."""
