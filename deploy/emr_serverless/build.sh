#!/usr/bin/env bash
# Build what EMR Serverless runs (docs/DEPLOY.md):
#   <out>/medallion-<version>-py3-none-any.whl   the project, as a wheel
#   <out>/requirements.txt                        its locked dependencies, minus pyspark and py4j
#   <out>/medallion-venv.tar.gz                   the packed Python environment (wheel + deps, no pyspark)
#   <out>/medallion_entry.py                      the .py that spark-submit runs
#   <out>/SHA256SUMS
# The cluster provides Spark (and its pyspark and py4j); a second copy in the environment would
# shadow the cluster's and break it, so the environment carries the project and every other
# dependency at the versions in uv.lock, and nothing else. The same goes for Delta Lake's jars:
# emr-spark-8.1.0 bundles Delta 4.2.0 in /usr/share/aws/delta/lib (the config lists them in
# spark.jars), so the environment holds no jar at all; it keeps delta-spark's pure-Python API
# (the `delta` package, pinned to the cluster's 4.2.0) and deltalake (delta-rs, no JVM).
#
# Environment variables:
#   OUT=dist/emr_serverless     where the artefacts go
#   PYTHON=python3.11           the interpreter the environment is built on; it must be the
#                               cluster's Python (same version, same path) unless SELF_CONTAINED=1
#   SELF_CONTAINED=0            1: copy the interpreter's standard library into the environment so
#                               it runs where that Python is not installed (needs a statically
#                               linked interpreter, as the Dockerfile beside this script builds)
#   UV=uv                       the uv binary (default: on the PATH, else .tools/bin/uv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/dist/emr_serverless}"
PYTHON="${PYTHON:-python3.11}"
SELF_CONTAINED="${SELF_CONTAINED:-0}"
UV="${UV:-$(command -v uv 2>/dev/null || echo "$ROOT/.tools/bin/uv")}"
ARCHIVE_NAME="medallion-venv.tar.gz"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "no '$PYTHON' on the PATH; set PYTHON=/path/to/python3.11"
[ -x "$UV" ] || command -v "$UV" >/dev/null 2>&1 || die "uv not found; run 'make setup' or set UV=/path/to/uv"
py_version="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$py_version" in 3.11|3.12) ;; *) die "$PYTHON is Python $py_version; medallion needs 3.11 or 3.12" ;; esac

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/medallion-emr-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

say "wheel"
rm -f "$OUT"/medallion-*.whl
"$UV" build --wheel --quiet --out-dir "$OUT" "$ROOT"
WHEEL="$(ls "$OUT"/medallion-*.whl)"

say "locked dependencies without pyspark/py4j -> requirements.txt"
"$UV" export --project "$ROOT" --frozen --quiet --no-dev --no-emit-project --no-hashes \
  --no-header --no-annotate --no-emit-package pyspark --no-emit-package py4j \
  --output-file "$OUT/requirements.txt"
grep -Eiq '^(pyspark|py4j)==' "$OUT/requirements.txt" && die "pyspark or py4j leaked into requirements.txt"

say "environment on Python $py_version ($PYTHON)"
"$PYTHON" -m venv --copies "$WORK/env"
# Every package pinned by the lock file, installed without resolution: the wheel's own
# dependency on pyspark is deliberately left unsatisfied (the cluster satisfies it).
"$UV" pip install --quiet --python "$WORK/env/bin/python" --link-mode copy --no-deps \
  -r "$OUT/requirements.txt" "$WHEEL"
"$WORK/env/bin/python" - <<'PY'
import importlib.util, sys
import medallion, medallion.cli  # noqa: F401  the CLI imports without Spark
for name in ("pyspark", "py4j"):
    if importlib.util.find_spec(name) is not None:
        sys.exit(f"{name} is installed in the environment; the cluster must provide it")
print(f"medallion {medallion.__version__} installed; pyspark and py4j absent", file=sys.stderr)
PY
jars="$(find "$WORK/env" -name '*.jar' | head -5)"
[ -z "$jars" ] || die "the environment holds jars (the cluster provides Spark's and Delta's): $jars"

if [ "$SELF_CONTAINED" = "1" ]; then
  say "copying the standard library into the environment"
  "$PYTHON" - "$WORK/env" <<'PY'
import shutil, sys, sysconfig
from pathlib import Path
env = Path(sys.argv[1])
if sysconfig.get_config_var("Py_ENABLE_SHARED"):
    sys.exit("SELF_CONTAINED=1 needs a statically linked Python (this one loads libpython from "
             f"{sysconfig.get_config_var('LIBDIR')}); build one as the Dockerfile does")
stdlib = Path(sysconfig.get_paths()["stdlib"])
target = env / "lib" / stdlib.name
shutil.copytree(stdlib, target, dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("site-packages", "__pycache__", "test", "idlelib"))
# Without pyvenv.cfg the interpreter finds its prefix from its own location (bin/../lib/python3.X),
# so ./environment/bin/python works wherever the archive is unpacked.
(env / "pyvenv.cfg").unlink()
PY
fi

say "packing -> $ARCHIVE_NAME"
rm -f "$OUT/$ARCHIVE_NAME"
find "$WORK/env" -name '__pycache__' -type d -prune -exec rm -rf {} +
if command -v venv-pack >/dev/null 2>&1; then
  venv-pack --prefix "$WORK/env" --output "$OUT/$ARCHIVE_NAME" --quiet
else
  # venv-pack's layout: the environment's bin/, lib/ and pyvenv.cfg at the archive's root, which
  # spark.archives=<uri>#environment unpacks as ./environment/.
  tar --sort=name --owner=0 --group=0 --numeric-owner -czf "$OUT/$ARCHIVE_NAME" -C "$WORK/env" .
fi

cp "$ROOT/deploy/emr_serverless/medallion_entry.py" "$OUT/"
(cd "$OUT" && sha256sum "$(basename "$WHEEL")" "$ARCHIVE_NAME" medallion_entry.py requirements.txt > SHA256SUMS)

say "done: $OUT"
ls -l "$OUT" >&2
cat >&2 <<EOF

Upload (see docs/DEPLOY.md), e.g. for dev:
  aws s3 cp $OUT/medallion_entry.py    s3://\$MEDALLION_LAKE_BUCKET/dev/code/medallion_entry.py
  aws s3 cp $OUT/$ARCHIVE_NAME s3://\$MEDALLION_LAKE_BUCKET/dev/code/$ARCHIVE_NAME
EOF
