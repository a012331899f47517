"""The ``daily_pipeline`` DAG: the medallion chain, daily, on Airflow 3.

Everything is built by ``medallion.orchestration.dag_factory`` from the configuration chosen with
environment variables (see docs/ORCHESTRATION.md): ``MEDALLION_ENV`` (default local),
``MEDALLION_CONFIG`` (default config/<env>.yaml in this project), ``MEDALLION_DAG_VARIANT``
(local | emr_serverless; default from the config), ``MEDALLION_DAG_DEADLINE=off`` to drop the
DAG-run deadline alert, ``MEDALLION_WORKDIR`` (default this project) and ``MEDALLION_PYTHON``.
"""

from __future__ import annotations

import os
from pathlib import Path

from medallion.orchestration.dag_factory import dag_from_environment

dag = dag_from_environment(os.environ, project_root=Path(__file__).resolve().parent.parent)
