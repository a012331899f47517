"""Data quality and data docs: the ``validate`` gate and the HTML run ``report``.

* ``table_contracts``: the ODCS v3 contract of each silver and gold table
  (``contracts/<layer>/<table>.yaml``): its declared columns and primary key (the merge keys);
* ``suite``: the quality rules in those contracts, loaded into checks;
* ``checks`` and ``engine``: the rules measured on Spark, results in ``_quality/run_date=D/``;
* ``job``: the ``validate`` job (lock, audit record, exit 1 when an error-severity check fails);
* ``console``: the compact results table ``medallion validate`` prints;
* ``report``: the self-contained HTML run report, read with DuckDB and pyarrow (no Spark).

The package imports nothing at this level, so ``medallion report`` never loads Spark.
"""
