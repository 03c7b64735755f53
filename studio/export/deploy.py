"""Export an adapter for deployment, check the export against the adapter, record the lineage.

The one entry point the CLI (`studio adapters export`) and the Tune tab's export panel call. An
export writes a model file to the host's disk, so only the operator may ask for one: a shared or
demo studio refuses it here, in the engine, where every surface (UI, HTTP API, CLI) passes. The
parity check's data and template are checked before anything is merged or written. Lineage: the
parity run is tagged `export-parity` and its note names the adapter (its store id and tuning
run), the type, the file and its sha256, so Experiments shows where the file came from; the same
record, with the parity figures, is `export.json` beside the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from studio.compare.config import build_config
from studio.compare.engine import ComparisonRunner
from studio.compare.prepare import prepare_run
from studio.export.parity import PARITY_TAG, Parity, run_parity
from studio.hosting import HostingPolicy, PolicyRefusal
from studio.models.adapters import read_adapter
from studio.models.registry import adapter_spec
from studio.settings import Settings
from studio.store import Store
from studio.tuning.export import (
    Export,
    ExportError,
    check_export,
    default_export_dir,
    export_adapter,
    write_manifest,
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    """What to export, where, and how to check it (the CLI's flags, the UI's form)."""

    folder: Path  # the adapter folder
    format: str = "gguf"
    quant: str | None = None
    output: Path | None = None  # default: STUDIO_HOME/exports/NAME-QUANT
    check: str | None = None  # data file for the parity check
    template: str | None = None  # the parity check's template
    limit: int | None = None  # score only the first N rows of the check's data


@dataclass(frozen=True)
class ExportOutcome:
    export: Export
    parity: Parity | None

    def as_dict(self) -> dict[str, Any]:
        data = self.export.to_dict()
        data["parity"] = self.parity.as_dict() if self.parity else None
        return data

    def lines(self) -> list[str]:
        lines = [self.export.path]
        if self.export.sha256:
            lines.append(f"sha256 {self.export.sha256}")
        return lines + (self.parity.lines() if self.parity else [])


def check_export_allowed(policy: HostingPolicy) -> None:
    """Writing a model to the server's disk is the operator's call alone."""
    if not policy.visitors_are_operators:
        raise PolicyRefusal(
            "operator-only",
            "exporting an adapter writes a model file to this server's disk, which only its "
            f"operator may do; this {policy.mode.value} studio refuses it for visitors. Fix: "
            "run the studio yourself (make run), or ask the operator to run `studio adapters "
            "export`",
            "STUDIO_SHARED",
        )


class AdapterExporter:
    """Exports under one studio's settings, store, comparison engine and hosting policy."""

    def __init__(
        self, settings: Settings, store: Store, runner: ComparisonRunner, policy: HostingPolicy
    ) -> None:
        self.settings, self.store, self.runner, self.policy = settings, store, runner, policy

    def export(self, request: ExportRequest, progress: Progress | None = None) -> ExportOutcome:
        check_export_allowed(self.policy)
        if bool(request.check) != bool(request.template):
            raise ExportError(
                "the parity check needs both a data file and a template. Fix: give --check "
                "DATA and --template T together, or neither"
            )
        quant = check_export(request.format, request.quant)
        info = read_adapter(request.folder)
        spec = adapter_spec(info.path, self.settings.adapters_dir)
        self._check_parity_inputs(request, spec)
        out = request.output or default_export_dir(
            self.settings.home, info.name, request.format, quant
        )
        export = export_adapter(info.path, request.format, quant, out, self.settings, progress)
        if not request.check or not request.template:
            return ExportOutcome(export, None)
        parity = run_parity(
            self.runner,
            self.store,
            spec,
            export.path,
            request.check,
            request.template,
            request.limit,
            progress,
        )
        self._record_lineage(export, parity)
        export = replace(export, parity=parity.as_dict())
        write_manifest(export)
        return ExportOutcome(export, parity)

    def _check_parity_inputs(self, request: ExportRequest, spec: str) -> None:
        """A bad --check/--template fails here, before hundreds of MB are written."""
        if request.check and request.template:
            config = build_config(
                data=request.check,
                templates=[request.template],
                models=[spec],
                scoring="loglik",
                limit=request.limit,
            )
            prepare_run(config, self.policy)

    def _record_lineage(self, export: Export, parity: Parity) -> None:
        record = self.store.adapter_record(export.adapter_path)
        trained = f", trained by t{export.adapter_run_id}" if export.adapter_run_id else ""
        adapter = f"a{record.id}" if record and record.id is not None else "not in the store"
        note = (
            f"Parity check of an export. Adapter: {export.adapter} ({adapter}{trained}) at "
            f"{export.adapter_path}. Export: {export.format} {export.quant or ''} "
            f"{export.path}, sha256 {export.sha256}, converter {export.converter or '-'}."
        )
        self.store.annotate_run("comparison", parity.run_id, " ".join(note.split()))
        self.store.tag_run("comparison", parity.run_id, PARITY_TAG)
