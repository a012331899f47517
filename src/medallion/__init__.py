"""medallion: a contract-driven lakehouse pipeline."""
