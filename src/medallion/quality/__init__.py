"""Data quality and data docs: the ``validate`` gate and the HTML run ``report``.

* ``suite``: the ODCS v3 quality contracts of silver and gold (``contracts/``), loaded into rules;
* ``checks`` and ``engine``: the rules measured on Spark, results in ``_quality/run_date=D/``;
* ``job``: the ``validate`` job (lock, audit record, exit 1 when an error-severity check fails);
* ``console``: the compact results table ``medallion validate`` prints;
* ``report``: the self-contained HTML run report, read with DuckDB and pyarrow (no Spark).

The package imports nothing at this level, so ``medallion report`` never loads Spark.
"""
