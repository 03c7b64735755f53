"""`studio adapters`: list, inspect, merge, export (GGUF for llama.cpp / Ollama, with a parity
check) and push the LoRA adapters tuning runs wrote."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_adapters_parser(sub: Any) -> None:
    p = sub.add_parser("adapters", help="list, show, merge or push trained LoRA adapters")
    cmds = p.add_subparsers(dest="adapters_command", required=True)
    listing = cmds.add_parser("list", help="adapters in the adapters folder, newest first")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)
    show = cmds.add_parser("show", help="what an adapter was trained on, with which settings")
    show.add_argument("name", help="adapter name (or an adapter folder path)")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=run_show)
    merge = cmds.add_parser("merge", help="merge an adapter into its base: a standalone model")
    merge.add_argument("name", help="adapter name (or an adapter folder path)")
    merge.add_argument("--output", required=True, metavar="DIR", help="new folder to write")
    merge.set_defaults(func=run_merge)
    _add_export_parser(cmds)
    push = cmds.add_parser("push", help="upload an adapter folder to a Hugging Face Hub repo")
    push.add_argument("name", help="adapter name (or an adapter folder path)")
    push.add_argument("--repo", required=True, metavar="ORG/NAME", help="Hub model repo id")
    push.add_argument("--token", help="Hub write token (better: set HF_TOKEN)")
    push.add_argument("--public", action="store_true", help="create the repo public")
    push.set_defaults(func=run_push)


def _add_export_parser(cmds: Any) -> None:
    export = cmds.add_parser(
        "export", help="export an adapter for deployment: a GGUF (+ Ollama Modelfile) or merged"
    )
    export.add_argument("name", help="adapter name (or an adapter folder path)")
    export.add_argument(
        "--format",
        choices=["gguf", "merged"],
        default="gguf",
        help="gguf (llama.cpp, Ollama) or a merged safetensors folder",
    )
    export.add_argument(
        "--quant",
        metavar="TYPE",
        help="GGUF type: f16 (default), q8_0 or q4_0; k-quants are refused",
    )
    export.add_argument(
        "--output",
        metavar="DIR",
        help="new folder to write (default: STUDIO_HOME/exports/NAME-TYPE)",
    )
    export.add_argument(
        "--check",
        metavar="DATA",
        help="parity check: compare the export with the adapter on this data",
    )
    export.add_argument("--template", metavar="T", help="the parity check's prompt template")
    export.add_argument(
        "--limit", type=int, metavar="N", help="parity check: score only the first N rows"
    )
    export.add_argument("--json", action="store_true", help="print the export record as JSON")
    export.set_defaults(func=run_export)


def _folder(name: str) -> Path:
    """An adapter name in the adapters folder, or a path to an adapter folder."""
    # lazy: settings (pydantic) and the adapter reader stay out of `studio --help`
    from studio.models.adapters import AdapterError, adapter_path, is_adapter_folder
    from studio.settings import get_settings

    given = Path(name).expanduser()
    if ("/" in name or name.startswith((".", "~"))) and is_adapter_folder(given):
        return given
    adapters_dir = get_settings().adapters_dir
    folder = adapter_path(adapters_dir, name)
    if not folder.is_dir():
        raise AdapterError(
            f"There is no adapter '{name}' in {adapters_dir}. "
            "Fix: see `studio adapters list` for the names."
        )
    return folder


def run_list(args: argparse.Namespace) -> int:
    # lazy: settings (pydantic) and the model registry stay out of `studio --help`
    from studio.models.adapters import list_adapters
    from studio.models.catalog import human_size
    from studio.models.registry import adapter_spec
    from studio.settings import get_settings

    adapters_dir = get_settings().adapters_dir
    adapters = list_adapters(adapters_dir)
    if args.json:
        rows = [_info_json(info, adapter_spec(info.path, adapters_dir)) for info in adapters]
        print(json.dumps(rows, indent=2))
        return 0
    if not adapters:
        print(f"No adapters in {adapters_dir} yet (a tuning run writes one).")
        return 0
    print(f"{'NAME':<28} {'BASE':<26} {'EVAL LOSS':>9} {'SIZE':>8}  CREATED")
    for info in adapters:
        loss = "-" if info.eval_loss is None else f"{info.eval_loss:.4f}"
        base = info.base_model if len(info.base_model) <= 26 else "…" + info.base_model[-25:]
        print(
            f"{info.name:<28} {base:<26} {loss:>9} {human_size(info.size_bytes):>8}  "
            f"{info.created_at}"
        )
    return 0


def _info_json(info: Any, spec: str) -> dict[str, Any]:
    return {
        "name": info.name,
        "spec": spec,
        "path": str(info.path),
        "base_model": info.base_model,
        "created_at": info.created_at,
        "size_bytes": info.size_bytes,
        "eval_loss": info.eval_loss,
        "studio": info.card is not None,
        "metrics": info.card.metrics if info.card else {},
    }


def run_show(args: argparse.Namespace) -> int:
    # lazy: settings (pydantic) and the model registry stay out of `studio --help`
    from studio.models.adapters import read_adapter
    from studio.models.catalog import human_size
    from studio.models.registry import adapter_spec
    from studio.settings import get_settings

    info = read_adapter(_folder(args.name))
    spec = adapter_spec(info.path, get_settings().adapters_dir)
    if args.json:
        data = _info_json(info, spec)
        data.update(card=info.card.to_dict() if info.card else None, peft_config=info.peft_config)
        print(json.dumps(data, indent=2))
        return 0
    rows = [
        ("name", info.name),
        ("spec", spec),
        ("path", str(info.path)),
        ("base model", info.base_model),
        ("created", info.created_at),
        ("size", human_size(info.size_bytes)),
        ("LoRA", _lora_line(info.peft_config)),
    ]
    rows.extend(_card_rows(info.card))
    for key, value in rows:
        print(f"{key + ':':<14}{value}")
    return 0


def _lora_line(peft: dict[str, Any]) -> str:
    targets = peft.get("target_modules")
    if isinstance(targets, list):
        targets = ",".join(sorted(targets))
    return (
        f"{peft.get('peft_type', '?')} r={peft.get('r')} alpha={peft.get('lora_alpha')} "
        f"dropout={peft.get('lora_dropout')} targets={targets}"
    )


def _card_rows(card: Any) -> list[tuple[str, str]]:
    if card is None:
        return [("studio", "no studio.json: a PEFT adapter trained elsewhere")]
    metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in card.metrics.items()) or "-"
    template = f"{card.template_name} ({card.template_hash})" if card.template_name else "-"
    run = f" (run #{card.run_id})" if card.run_id is not None else ""
    return [
        ("base from", card.base_location),
        ("quantization", card.quantization),
        ("data", f"{card.dataset_name} ({card.dataset_hash})"),
        ("rows", f"{card.n_train} train, {card.n_eval} eval"),
        ("template", template),
        ("metrics", metrics),
        ("trained by", f"Instruct Studio {card.studio_version}{run}"),
    ]


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_merge(args: argparse.Namespace) -> int:
    # lazy: the export module (model loading, torch on use) stays out of `studio --help`
    from studio.settings import get_settings
    from studio.tuning.export import merge_adapter

    out = merge_adapter(
        _folder(args.name),
        Path(args.output),
        get_settings(),
        lambda message: print(message, file=sys.stderr),
    )
    print(f"merged {args.name} into {out} (loads with AutoModelForCausalLM.from_pretrained)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    # lazy: the export engine (models, store, comparisons) stays out of `studio --help`
    from studio.export.deploy import AdapterExporter, ExportRequest
    from studio.services import create_services

    request = ExportRequest(
        folder=_folder(args.name),
        format=args.format,
        quant=args.quant,
        output=Path(args.output) if args.output else None,
        check=args.check,
        template=args.template,
        limit=args.limit,
    )
    services = create_services()
    try:
        exporter = AdapterExporter(
            services.settings, services.store, services.comparisons, services.policy
        )
        outcome = exporter.export(request, lambda message: print(message, file=sys.stderr))
    finally:
        services.close()
    if args.json:
        print(json.dumps(outcome.as_dict(), indent=2))
    else:
        print("\n".join(outcome.lines()))
    return 0


def run_push(args: argparse.Namespace) -> int:
    # lazy: the export module (model loading, the Hub client) stays out of `studio --help`
    from studio.tuning.export import push_adapter

    url = push_adapter(_folder(args.name), args.repo, args.token, private=not args.public)
    print(f"pushed {args.name} to {url}")
    return 0
