"""medallion: a daily, contract-driven lakehouse pipeline in PySpark."""

__version__ = "0.1.0"
