# medallion — the two commands are `make run` and `make test`; everything else supports them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= 1
DAYS ?= 3
START ?= 2025-01-13
END := $(shell $(PYTHON) -c "import datetime as d; print(d.date.fromisoformat('$(START)') + d.timedelta(days=$(DAYS)-1))")

.PHONY: help setup check-java check-maven jars check-chromium run test lint format bench clean

help:
	@echo "make run    set up, generate sample data, run the whole pipeline, validate, report"
	@echo "make test   set up and run the test suite (unit + integration on small data)"
	@echo "make test-slow, make test-reliability   the slower suites .ci/run runs too"
	@echo "make lint   ruff check + format check"
	@echo "make jars   fetch Delta Lake's (and hadoop-aws's) jars from Maven Central into .jars/"
	@echo "make bench  benchmarks (see bench/README.md); BENCH_BASELINE=REF runs a git ref beside"
	@echo "make clean  remove data/, caches and the virtual environment"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

check-java:
	@command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || { \
	  echo "Java 17+ is required by Spark 4 but no 'java' was found."; \
	  echo "Install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME."; exit 1; }
	@v=$$( (if [ -n "$$JAVA_HOME" ]; then "$$JAVA_HOME/bin/java" -version; else java -version; fi) 2>&1 | head -1 | sed -E 's/.*version "([0-9]+)(\.([0-9]+))?.*/\1 \3/'); \
	 set -- $$v; major=$$1; [ "$$major" = "1" ] && major=$$2; \
	 [ "$$major" -ge 17 ] 2>/dev/null || { echo "Java 17+ is required by Spark 4; found Java $$major. Install openjdk-17 or set JAVA_HOME."; exit 1; }

check-maven:
	@command -v mvn >/dev/null 2>&1 || { \
	  echo "Maven is required to fetch Delta Lake's jars from Maven Central but no 'mvn' was found."; \
	  echo "Install it (Debian/Ubuntu: apt-get install maven)."; exit 1; }

# The JVM side of the lake (jvm/pom.xml): Delta Lake's jars in .jars/delta (always on Spark's
# classpath) and hadoop-aws with the AWS SDK bundle in .jars/s3 (only for an s3a:// lake).
# Fetched once from Maven Central, pinned by jvm/jars.sha256, never downloaded at run time.
JARS_STAMP := .jars/.fetched
MVN_COPY := mvn -q -B -f jvm/pom.xml dependency:copy-dependencies -DincludeScope=runtime
$(JARS_STAMP): jvm/pom.xml jvm/jars.sha256
	@$(MAKE) --no-print-directory check-maven
	rm -rf .jars
	$(MVN_COPY) -DoutputDirectory=$$(pwd)/.jars/delta -DincludeGroupIds=io.delta,io.unitycatalog
	$(MVN_COPY) -DoutputDirectory=$$(pwd)/.jars/s3 \
	  -DincludeGroupIds=org.apache.hadoop,software.amazon.awssdk,software.amazon.s3.analyticsaccelerator \
	  -DexcludeArtifactIds=hadoop-client-api,hadoop-client-runtime
	cd .jars && sha256sum --quiet --strict -c ../jvm/jars.sha256
	@[ "$$(cd .jars && ls delta/*.jar s3/*.jar | sort)" = "$$(awk '{print $$2}' jvm/jars.sha256 | sort)" ] || { \
	  echo "the jars in .jars/ differ from those pinned in jvm/jars.sha256"; exit 1; }
	@touch $@

jars: $(JARS_STAMP)

$(BIN)/medallion: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra airflow
	@touch $@

setup: check-java $(JARS_STAMP) $(BIN)/medallion

run: setup
	$(BIN)/medallion generate --scale $(SCALE) --days $(DAYS) --start-date $(START) --force
	$(BIN)/medallion run --job all --start-date $(START) --end-date $(END)
	$(BIN)/medallion validate --run-date $(END) || { $(BIN)/medallion report --run-date $(END); exit 1; }
	@echo
	@echo "lake:      $$(pwd)/data"
	@echo "audit:     $(BIN)/medallion audit --last 10"
	@report=$$($(BIN)/medallion report --run-date $(END)) && echo "report:    $$report"

# The report test drives Debian's Chromium with Playwright (Playwright's own browser download
# does not work offline); install it when missing and we may (root on Debian), else say how.
check-chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report test"; \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }); \
	  else echo "the report test needs Chromium: run 'sudo apt-get install chromium'"; exit 1; fi; }

# make test: the unit tests and the integration tests that prove the mission on small data
# (pyproject.toml's addopts leave out the markers "slow", "reliability" and "extended").
test: setup check-chromium
	$(BIN)/python -m pytest --durations=25 $(PYTEST_ARGS)

# The multi-minute suites outside make test's budget that CI runs: the redelivery story, the
# Airflow DAG run, the stream's crash test.
.PHONY: test-slow test-reliability test-extended
test-slow: setup
	$(BIN)/python -m pytest --durations=25 -m "slow and not reliability" $(PYTEST_ARGS)

# The proofs CI's budget leaves out (README "Tests" says when to run them): the chain on a
# standalone Spark cluster against local mode, the packaged wheel under spark-submit, the bench
# smoke run, the delivery schedules through the jobs (tests/integration/test_job_schedules.py,
# MEDALLION_JOB_SCHEDULES, default 3 plus a fixed one), and 12 schedules of the dimension drawn
# with another seed than make test's fixed 8 (tests/unit/transforms/gold/test_delivery_schedules.py).
test-extended: setup
	$(BIN)/python -m pytest --durations=25 -m extended $(PYTEST_ARGS)
	MEDALLION_SCHEDULES=12 MEDALLION_SCHEDULE_SEED=1 $(BIN)/python -m pytest \
	  tests/unit/transforms/gold/test_delivery_schedules.py $(PYTEST_ARGS)

# The reliability suite (docs/RELIABILITY.md): reruns, crashes, bad inputs, locks, secrets.
test-reliability: setup
	$(BIN)/python -m pytest --durations=25 -m reliability tests/reliability $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests bench dags deploy
	$(BIN)/ruff format --check src tests bench dags deploy

format: setup
	$(BIN)/ruff check --fix src tests bench dags deploy
	$(BIN)/ruff format src tests bench dags deploy

# Benchmarks (bench/README.md): scratch lakes under bench/.work, results in bench/results/.
BENCH_SCALES ?= 0.1,1,10
BENCH_REPEAT ?= 1
BENCH_BASELINE ?=
bench: setup
	$(BIN)/python -m bench --scales $(BENCH_SCALES) --repeat-scale $(BENCH_REPEAT) \
	  $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE)) $(BENCH_ARGS)

clean:
	rm -rf data .venv .tools .jars .pytest_cache .ruff_cache spark-warehouse metastore_db derby.log bench/.work

# --- orchestration and deployment (docs/ORCHESTRATION.md, docs/DEPLOY.md) ---------------------
.PHONY: package airflow-test
AIRFLOW_TEST_HOME ?= /tmp/medallion-airflow-home
AIRFLOW_TEST_DATE ?= 2025-01-13

package: setup  ## build the EMR Serverless artefacts into dist/emr_serverless/
	PYTHON=$${PYTHON_FOR_PACKAGE:-$(BIN)/python} UV=$(UV) bash deploy/emr_serverless/build.sh

airflow-test: setup  ## run the DAG once with `airflow dags test` in a throwaway AIRFLOW_HOME
	rm -rf $(AIRFLOW_TEST_HOME) && mkdir -p $(AIRFLOW_TEST_HOME)
	export AIRFLOW_HOME=$(AIRFLOW_TEST_HOME) AIRFLOW__CORE__LOAD_EXAMPLES=False \
	  AIRFLOW__CORE__DAGS_FOLDER=$$(pwd)/dags MEDALLION_DAG_DEADLINE=off \
	  AIRFLOW_CONN_FS_DEFAULT='{"conn_type": "fs"}'; \
	$(BIN)/airflow db migrate >/dev/null && \
	$(BIN)/medallion generate --scale 0.05 --days 1 --start-date $(AIRFLOW_TEST_DATE) --force && \
	$(BIN)/airflow dags test daily_pipeline $(AIRFLOW_TEST_DATE) && \
	$(BIN)/medallion audit --last 12
