"""Model load time: transformers reading the GGUF directly (baseline) vs the studio's converted
safetensors folder, in full precision and 4-bit NF4, measured in the same run.

    .venv/bin/python benchmarks/model_load.py [--models smollm2-135m-instruct gemma-3-270m]

Prints one row per model and the speed-up ratio against the GGUF baseline.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path


def _timed(fn) -> float:
    gc.collect()
    started = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - started
    del result
    gc.collect()
    return elapsed


def bench(alias: str, home: Path) -> dict[str, float]:
    from transformers import AutoModelForCausalLM

    from studio.models.convert import ensure_converted
    from studio.models.loading import LoadRequest, load_model
    from studio.models.registry import resolve_spec
    from studio.settings import load_settings

    settings = load_settings(home=home, offline=True)
    source = resolve_spec(alias)
    assert source.bundled is not None
    gguf = source.bundled.gguf_path(settings.models_dir / "_gguf")
    assert gguf is not None
    row = {
        "gguf_direct_s": _timed(
            lambda: AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        ),
        "convert_once_s": _timed(lambda: ensure_converted(source, settings.models_dir)),
        "studio_fp32_s": _timed(lambda: load_model(LoadRequest(alias), settings)),
        "studio_4bit_s": _timed(lambda: load_model(LoadRequest(alias, "4bit"), settings)),
    }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m-instruct", "gemma-3-270m"])
    args = parser.parse_args()
    print(
        f"{'model':<24} {'GGUF direct':>12} {'convert once':>13} {'studio fp32':>12} "
        f"{'studio 4bit':>12} {'speed-up fp32':>14}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for alias in args.models:
            r = bench(alias, Path(tmp))
            ratio = r["gguf_direct_s"] / r["studio_fp32_s"]
            print(
                f"{alias:<24} {r['gguf_direct_s']:>11.1f}s {r['convert_once_s']:>12.1f}s "
                f"{r['studio_fp32_s']:>11.2f}s {r['studio_4bit_s']:>11.2f}s {ratio:>13.1f}x"
            )


if __name__ == "__main__":
    main()
