"""The deployable artefacts work outside the source tree.

* The wheel, installed in a clean virtual environment, runs under ``spark-submit`` through
  deploy/emr_serverless/medallion_entry.py from an unrelated working directory, with the config
  shipped inside the package and Spark's master taken from spark-submit (``master: null``).
* deploy/emr_serverless/build.sh packs an environment that carries the project and its
  dependencies but not pyspark or py4j (the cluster provides those).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from cluster_helpers import REPO, RUN_DATE, spark_env, write_config

from medallion.spark import local_jars

# In make test-extended, outside CI's budget (README "Tests"): CI's 90 minutes had no margin left.
pytestmark = [pytest.mark.extended, pytest.mark.integration]

ENTRY = REPO / "deploy" / "emr_serverless" / "medallion_entry.py"


def uv() -> str:
    found = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to build the wheel; run `make setup`")
    return found


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 900):
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, (
        f"{' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([uv(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(REPO)], cwd=REPO)
    [built] = out.glob("medallion-*.whl")
    with zipfile.ZipFile(built) as archive:
        names = archive.namelist()
    assert "medallion/_config/local.yaml" in names  # the config travels in the wheel
    assert "medallion/cli.py" in names
    return built


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A clean venv with the wheel and its locked dependencies (pyspark included: local install)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    requirements = venv.parent / "requirements.txt"
    run(
        [
            *(uv(), "export", "--project", str(REPO), "--frozen", "--quiet", "--no-dev"),
            *("--no-emit-project", "--no-hashes", "--output-file", str(requirements)),
        ],
        cwd=REPO,
    )
    run([uv(), "venv", "--quiet", "--python", sys.executable, str(venv)], cwd=venv.parent)
    run(
        [
            *(uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")),
            *("--no-deps", "-r", str(requirements), str(wheel)),
        ],
        cwd=venv.parent,
    )
    return venv


@pytest.mark.timeout(2400)
def test_wheel_runs_under_spark_submit_from_anywhere(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = spark_env(PYSPARK_PYTHON=str(installed / "bin" / "python"))
    env.pop("SPARK_HOME")  # the venv's own pyspark finds its home
    env.pop("PYTHONPATH", None)  # nothing from the source tree
    env["PATH"] = f"{installed / 'bin'}{os.pathsep}{env['PATH']}"

    where = run(
        [str(installed / "bin" / "python"), "-c", "import medallion; print(medallion.__file__)"],
        cwd=elsewhere,
        env=env,
    )
    assert str(installed) in where.stdout, "the package must come from the venv, not the tree"

    submit = [
        str(installed / "bin" / "spark-submit"),
        # Delta's jars at submit time, as EMR Serverless's sparkSubmitParameters name its own.
        *("--jars", ",".join(local_jars())),
        *("--master", "local[2]", "--conf", "spark.driver.host=127.0.0.1"),
        *("--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.ui.enabled=false"),
        str(ENTRY),
    ]
    listed = run([*submit, "jobs"], cwd=elsewhere, env=env)
    assert listed.stdout.strip(), "medallion jobs printed nothing"
    job_names = [line.split()[0] for line in listed.stdout.strip().splitlines()]

    # master: null -> Spark's master is spark-submit's (as on EMR Serverless).
    lake = tmp_path / "lake"
    config = write_config(tmp_path / "submit.yaml", lake, None)
    run(
        [
            *submit,
            "generate",
            "--scale",
            "0.02",
            "--days",
            "1",
            "--start-date",
            RUN_DATE,
            "--config",
            str(config),
        ],
        cwd=elsewhere,
        env=env,
    )
    assert (lake / "landing" / "_manifest.json").is_file()

    job = "fx_json_to_bronze" if "fx_json_to_bronze" in job_names else job_names[0]
    done = run(
        [*submit, "run", "--job", job, "--run-date", RUN_DATE, "--config", str(config)],
        cwd=elsewhere,
        env=env,
    )
    # spark-submit sends the Python driver's stdout and stderr both to its stdout.
    assert "spark session ready: master=local[2]" in done.stdout + done.stderr
    [record] = [
        json.loads(p.read_text()) for p in (lake / "_audit" / f"run_date={RUN_DATE}").glob("*.json")
    ]
    assert (record["job"], record["status"]) == (job, "succeeded")
    assert record["rows_in"] > 0


def test_bad_usage_exits_2_through_the_entry_point(installed, tmp_path):
    env = spark_env(PYSPARK_PYTHON=str(installed / "bin" / "python"))
    env.pop("SPARK_HOME")
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [
            str(installed / "bin" / "spark-submit"),
            *("--master", "local[1]", str(ENTRY)),
            *("run", "--job", "no_such_job", "--run-date", RUN_DATE),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 2
    assert "unknown job 'no_such_job'" in done.stdout + done.stderr


def test_build_script_packs_the_project_without_pyspark(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "UV": uv()}
    run(["bash", str(REPO / "deploy" / "emr_serverless" / "build.sh")], cwd=tmp_path, env=env)

    expected = {"requirements.txt", "medallion-venv.tar.gz", "medallion_entry.py", "SHA256SUMS"}
    assert expected <= {p.name for p in out.iterdir()}
    assert list(out.glob("medallion-*.whl"))
    requirements = (out / "requirements.txt").read_text()
    assert "pyarrow==" in requirements
    assert "pyspark" not in requirements and "py4j" not in requirements
    with tarfile.open(out / "medallion-venv.tar.gz") as archive:
        names = archive.getnames()
    roots = {name.removeprefix("./").split("/")[0] for name in names} - {"", "."}
    assert {"bin", "lib", "pyvenv.cfg"} <= roots  # unpacks as ./environment/bin/python
    site = [n for n in names if "/site-packages/" in n]
    assert any(n.endswith("site-packages/medallion/cli.py") for n in site)
    assert any(n.endswith("site-packages/medallion/_config/prod.yaml") for n in site)
    assert any("/site-packages/pyarrow/" in n for n in site)
    assert not [n for n in site if "/site-packages/pyspark/" in n or "/site-packages/py4j/" in n]
