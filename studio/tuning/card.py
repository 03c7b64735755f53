"""The adapter folder, write side: studio.json, training_config.yaml, prompt_template.yaml and
the README model card a tuning run leaves beside the PEFT files (studio.models.adapters reads).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from studio.models.adapters import PEFT_CONFIG, STUDIO_JSON, AdapterCard
from studio.models.registry import BUNDLED_MODELS
from studio.tuning.preference import DEFAULT_BETA


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temp file in the same folder, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_adapter_metadata(folder: Path, card: AdapterCard) -> None:
    """Write studio.json, training_config.yaml, prompt_template.yaml and the README model card."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / STUDIO_JSON, json.dumps(card.to_dict(), indent=2) + "\n")
    config_yaml = yaml.safe_dump(card.config, sort_keys=False, allow_unicode=True)
    write_text_atomic(folder / "training_config.yaml", config_yaml)
    if card.template_yaml:
        write_text_atomic(folder / "prompt_template.yaml", card.template_yaml)
    _point_peft_at_base(folder, card.base_location)
    write_text_atomic(folder / "README.md", render_model_card(card))


def _point_peft_at_base(folder: Path, base_location: str) -> None:
    # Plain `PeftModel.from_pretrained` / AutoPeftModel find the base through this field; PEFT
    # fills it from the model's name_or_path, which is empty for some models built in memory.
    path = folder / PEFT_CONFIG
    if not path.is_file() or not base_location:
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if not config.get("base_model_name_or_path"):
        config["base_model_name_or_path"] = base_location
        write_text_atomic(path, json.dumps(config, indent=2) + "\n")


# --- the README model card -------------------------------------------------------------------


def render_model_card(card: AdapterCard) -> str:
    """README.md for an adapter: Hub front matter, then what was trained on what, and how."""
    sections = [
        _front_matter(card),
        f"# {card.name}\n\n"
        f"A LoRA adapter for **{card.base_model}**, trained with Instruct Studio "
        f"{card.studio_version} on {card.created_at}"
        + (f" (tuning run #{card.run_id})." if card.run_id is not None else "."),
        _base_section(card),
        _data_section(card),
        "## Training settings\n\n" + _table(("Setting", "Value"), _settings_rows(card)),
        "## Final metrics\n\n" + _metrics_text(card.metrics),
        "## Prompt format\n\n" + _prompt_text(card),
        _usage_section(card),
    ]
    return "\n\n".join(sections).rstrip() + "\n"


def _hub_base_id(card: AdapterCard) -> str | None:
    # The Hub validates `base_model` against its repos, so only a real hub id goes there.
    bundled = BUNDLED_MODELS.get(card.base_model.lower())
    if bundled is not None:
        return bundled.hub_id
    looks_like_id = card.base_model.count("/") == 1 and not card.base_model.startswith((".", "/"))
    return card.base_model if looks_like_id and not Path(card.base_model).exists() else None


def _front_matter(card: AdapterCard) -> str:
    meta: dict[str, Any] = {}
    base = _hub_base_id(card)
    if base:
        meta["base_model"] = base
    tags = ["lora"] + (["qlora"] if card.quantization == "4bit" else []) + ["instruct-studio"]
    meta.update(library_name="peft", tags=tags, pipeline_tag="text-generation")
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---"


def _base_section(card: AdapterCard) -> str:
    bundled = BUNDLED_MODELS.get(card.base_model.lower())
    origin = f" — {bundled.origin}, converted to safetensors by the studio" if bundled else ""
    quant = {
        "4bit": "4bit (QLoRA: NF4 with double quantization; the LoRA weights are full precision)",
        "8bit": "8bit (bitsandbytes LLM.int8)",
        "none": "none (full-precision base)",
    }.get(card.quantization, card.quantization)
    return (
        "## Base model\n\n"
        f"- Studio spec: `{card.base_model}`{origin}\n"
        f"- Weights loaded from: `{card.base_location}`\n"
        f"- Base quantization while training: {quant}"
    )


def _data_section(card: AdapterCard) -> str:
    where = f" (`{card.dataset_path}`)" if card.dataset_path else ""
    return (
        "## Data\n\n"
        f"- Dataset: **{card.dataset_name}**{where}, content hash `{card.dataset_hash}`\n"
        f"- Rows: {card.n_train} for training, {card.n_eval} held out for the eval loss"
    )


def _settings_rows(card: AdapterCard) -> list[tuple[str, str]]:
    lora = card.config.get("lora", {})
    data = card.config.get("data", {})
    train = card.config.get("training", {})
    targets = lora.get("target_modules", "-")
    steps = train.get("max_steps")
    return [
        *_method_rows(card.config.get("preference") or {}),
        ("LoRA rank r", str(lora.get("r", "-"))),
        ("LoRA alpha", str(lora.get("alpha", "-"))),
        ("LoRA dropout", str(lora.get("dropout", "-"))),
        ("Target modules", ", ".join(targets) if isinstance(targets, list) else str(targets)),
        ("rsLoRA", _yes_no(lora.get("use_rslora"))),
        ("DoRA", _yes_no(lora.get("use_dora"))),
        ("Base quantization", card.quantization),
        ("Learning rate", str(train.get("learning_rate", "-"))),
        ("Scheduler", f"{train.get('scheduler', '-')} (warmup {train.get('warmup_ratio', 0)})"),
        ("Epochs / max steps", f"{train.get('epochs', '-')} / {steps if steps else '-'}"),
        ("Batch size", str(train.get("batch_size", "-"))),
        ("Gradient accumulation", str(train.get("grad_accumulation", "-"))),
        ("Max length (tokens)", str(data.get("max_length", "-"))),
        ("Completion-only loss", _yes_no(data.get("completion_only_loss"))),
        ("Seed", str(train.get("seed", "-"))),
    ]


def _method_rows(preference: dict[str, Any]) -> list[tuple[str, str]]:
    """The objective: sft, or a preference method with its beta and the adapter it continued."""
    method = str(preference.get("method") or "sft")
    if method == "sft":
        return [("Method", "sft (supervised instruction tuning)")]
    beta = preference.get("beta")
    rows = [("Method", method), ("Beta", str(beta if beta is not None else DEFAULT_BETA))]
    if preference.get("from_adapter"):
        rows.append(("Continued from", str(preference["from_adapter"])))
    return rows


def _yes_no(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines.extend(f"| {key} | {value} |" for key, value in rows)
    return "\n".join(lines)


def _metrics_text(metrics: dict[str, float | int | None]) -> str:
    if not metrics:
        return "No metrics were recorded."
    rows = [(key, _number(value)) for key, value in metrics.items()]
    return _table(("Metric", "Value"), rows)


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):  # before/after pairs of a preference run
        return " → ".join(f"{key} {_number(item)}" for key, item in value.items())
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _prompt_text(card: AdapterCard) -> str:
    if card.template_yaml:
        name = card.template_name or "(unnamed)"
        version = f" (hash `{card.template_hash}`)" if card.template_hash else ""
        return (
            f"Rows were rendered with the studio prompt template **{name}**{version}; prompt the "
            "adapter the same way. The exact template is prompt_template.yaml:\n\n"
            f"```yaml\n{card.template_yaml.rstrip()}\n```"
        )
    fmt = card.config.get("data", {}).get("format", "auto")
    return (
        f"Rows ({fmt} format) were rendered with the tokenizer's chat template, so prompt the "
        "adapter through `tokenizer.apply_chat_template` as you would the base model."
    )


def _usage_section(card: AdapterCard) -> str:
    return (
        "## How to use it\n\n"
        f"In Instruct Studio, pick `adapters/{card.name}` as the model (Playground, Compare tab) "
        f"or run `studio compare --model adapters/{card.name} ...`.\n\n"
        "With plain PEFT (the base must be loadable where you run this):\n\n"
        "```python\n"
        "from peft import PeftModel\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        f'base = AutoModelForCausalLM.from_pretrained("{card.base_location}")\n'
        f'model = PeftModel.from_pretrained(base, "path/to/{card.name}")  # or the Hub repo id\n'
        f'tokenizer = AutoTokenizer.from_pretrained("path/to/{card.name}")\n'
        "```\n\n"
        f"`studio adapters merge {card.name} --output DIR` writes a standalone merged model."
    )
