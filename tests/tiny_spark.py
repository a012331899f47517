"""Spark settings for the tests' tiny lakes (a few hundred rows a table), given to the session
fixture that the in-process tests share.

At that size a chain day is planning and compiling, not computing: each of its some 450 queries
compiles its generated Java code once, and in one long-lived session that compilation cost more
than running the same rows through Spark's interpreted expressions. Measured on a two-day chain
at scale 0.02 in one session: 137 s and 104 s per day with code generation, 101 s and 72 s
without; with the class cache of ``medallion.spark.DEFAULT_CONF``, ``make test`` went from
17 min 29 s to 14 min 41 s.

Adaptive query execution stays on. Turning it off looked like a gain on a two-day chain at
scale 0.02 (103 + 78 s and 134 + 86 s per day with it, 93 + 56 s and 120 + 77 s without, runs
alternated), but the whole ``make test`` took 22 min 22 s without it against 20 min 23 s with
it in the same sitting: within the machine's noise at best, so not adopted.

CLI processes keep Spark's default: there it showed no gain. The reliability suite took 20 min
47 s with these settings in every CLI config and 20 min 39 s without; ``airflow dags test``
took 423 s with them (371 s on the last, slower, CI run without). So the reliability suite's,
the DAG's, the cluster's, the bench's and the packaged wheel's processes run the shipped
configuration, code generation included, as the pipeline does.
"""

TINY_DATA_CONF = {
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
