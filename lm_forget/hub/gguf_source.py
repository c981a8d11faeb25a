"""What a GGUF file says about the model it was converted from (its ``general.*`` metadata, read with ``gguf``).

A card's ``base_model`` must be a Hub id: llama.cpp's converter records it, when it knows it, as
``general.source.huggingface.repository`` or a ``https://huggingface.co/ORG/NAME`` URL
(``general.source.url`` / ``general.source.repo_url`` / ``general.url`` / ``general.repo_url``). Names such as
``general.name`` or ``general.organization`` are not ids and are never turned into one (a guessed id would
point the card at a model that may not exist): without a recorded id, ``--base-model-id`` says it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: keys that may hold the Hub id (or a Hub URL) of the model the file was converted from, most specific first
HUB_ID_KEYS = ("general.source.huggingface.repository", "general.source.url", "general.source.repo_url",
               "general.url", "general.repo_url")
_HUB_URL = "https://huggingface.co/"


@dataclass(frozen=True)
class GGUFSource:
    """The ``general.*`` facts of one GGUF file that a card shows."""

    file: str  #: the file's name (never its path)
    hub_id: str | None  #: Hub id of the model it was converted from, when the file records one
    name: str | None  #: ``general.name``
    organization: str | None  #: ``general.organization``
    quantization: str | None  #: the file type, e.g. ``Q4_1`` (``general.file_type``)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "hub_id": self.hub_id, "name": self.name, "organization": self.organization,
                "quantization": self.quantization}


def _hub_id(value: str) -> str | None:
    from lm_forget.hub.base_model import is_hub_id

    value = value.strip()
    if value.startswith(_HUB_URL):
        value = "/".join(value[len(_HUB_URL):].split("/")[:2])
    elif "://" in value:
        return None
    return value if "/" in value and is_hub_id(value) else None


def read_gguf_source(path: str | Path) -> GGUFSource | None:
    """The metadata of the GGUF file at ``path``; None when it is not a readable local file (or ``gguf`` is missing)."""
    path = Path(path).expanduser()
    if not path.is_file():
        return None
    try:
        from gguf import GGUFReader, LlamaFileType

        fields = GGUFReader(str(path)).fields
    except Exception as exc:  # ImportError, a truncated or foreign file: the card simply says less
        log.warning("cannot read the GGUF metadata of %s: %s", path.name, exc)
        return None

    def value(key: str) -> Any:
        field = fields.get(key)  # decoded from its parts, as every gguf release since 0.10 stores them
        if field is None or not field.data:
            return None
        part = field.parts[field.data[0]]
        return bytes(part).decode("utf-8", "replace") if field.types and field.types[0].name == "STRING" else part[0]

    def text(key: str) -> str | None:
        found = value(key)
        return found if isinstance(found, str) and found else None

    hub_id = next((found for key in HUB_ID_KEYS if (recorded := text(key)) and (found := _hub_id(recorded))), None)
    file_type = value("general.file_type")
    quantization = None
    if file_type is not None:
        try:
            quantization = LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_")
        except ValueError:
            quantization = f"file type {int(file_type)}"
    return GGUFSource(path.name, hub_id, text("general.name"), text("general.organization"), quantization)


def gguf_path(model: str | None, gguf_file: str | None) -> Path | None:
    """The local GGUF file of a base (``model`` a folder), or None (a Hub repo, or no GGUF)."""
    if not model or not gguf_file:
        return None
    path = Path(model).expanduser() / gguf_file
    return path if path.is_file() else None
