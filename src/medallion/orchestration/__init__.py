"""Orchestration: the Airflow DAG factory and its alerting callbacks.

``dag_factory`` builds the ``daily_pipeline`` DAG (local or EMR Serverless variant) from the
configuration and needs the ``airflow`` extra; ``callbacks`` needs nothing beyond the standard
library and the configuration, so Airflow's workers and triggerer can import it anywhere.
"""
