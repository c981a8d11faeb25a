"""The Hub id of a run's base model: the Hub rejects card metadata like ``base_model: /local/path``.

A local folder names its Hub model in one of two ways: it is a Hugging Face cache snapshot
(``.../models--org--name/snapshots/<sha>``), or its ``config.json`` records ``_name_or_path`` as a Hub id.
A GGUF base names it in its ``general.*`` metadata, when the converter recorded it (``gguf_source.py``).
Otherwise the user says it with ``--base-model-id``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lm_forget.errors import ConfigError
from lm_forget.formats import MODEL_CONFIG_FILE

#: ``name`` or ``org/name`` as the Hub spells repo ids (huggingface_hub's validate_repo_id rules)
REPO_ID_RE = re.compile(r"^(?:[\w\-.]{1,96}/)?[\w\-.]{1,96}$")
_SNAPSHOT_RE = re.compile(r"^models--(?P<org>[^/]+?)--(?P<name>[^/]+)$")


def require_repo_id(repo_id: str, what: str = "repo id") -> str:
    """``repo_id`` when huggingface_hub's own ``validate_repo_id`` accepts it; otherwise one ConfigError line."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid"
        raise ConfigError(f"{what} {repo_id!r} is not a valid Hugging Face repo id ({reason}); write NAMESPACE/NAME "
                          "with letters, digits, '-', '_' and '.', e.g. me/llama2-forget-boolq. Nothing was "
                          "sent.") from None
    return repo_id


def is_hub_id(value: str | None) -> bool:
    """True when ``value`` is spelled like a Hub repo id and is not an existing local path."""
    if not value or value.startswith(("/", ".", "~")) or "--" in value or ".." in value:
        return False
    return REPO_ID_RE.fullmatch(value) is not None and not Path(value).expanduser().exists()


def local_hub_id(folder: str | Path) -> str | None:
    """The Hub id a local model folder came from, or None when it does not say."""
    path = Path(folder).expanduser()
    parts = path.resolve().parts if path.exists() else path.parts
    for i, part in enumerate(parts[:-2]):
        match = _SNAPSHOT_RE.match(part)
        if match and parts[i + 1] == "snapshots":
            org = match["org"]
            return f"{org}/{match['name']}" if org else match["name"]
    config = path / MODEL_CONFIG_FILE
    if config.is_file():
        try:
            name = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path")
        except (OSError, ValueError):
            return None
        if isinstance(name, str) and is_hub_id(name):
            return name
    return None


def hub_base_model(model: str | None, override: str | None = None, gguf_file: str | None = None) -> str | None:
    """The Hub id to publish as ``base_model``: ``override``, ``model`` itself, or what its folder records.

    With ``gguf_file``: the id the file's metadata records, else ``model`` when it is a Hub repo (of GGUF files).
    """
    if override:
        if not is_hub_id(override):
            raise ConfigError(f"base model id {override!r} (--base-model-id) is not a Hub model id; spell it org/name, "
                              "e.g. meta-llama/Llama-2-7b-hf")
        return override
    if not model:
        return None
    if gguf_file:
        from lm_forget.hub.gguf_source import gguf_path, read_gguf_source

        path = gguf_path(model, gguf_file)
        source = read_gguf_source(path) if path else None
        if source is not None and source.hub_id:
            return source.hub_id
        return model if is_hub_id(model) else None
    if is_hub_id(model):
        return model
    return local_hub_id(model)


def require_hub_base_model(model: str | None, override: str | None = None, gguf_file: str | None = None) -> str:
    """Like :func:`hub_base_model`, but a local path with no Hub id is refused (before anything is pushed)."""
    found = hub_base_model(model, override, gguf_file)
    if found is None and gguf_file:
        from lm_forget.hub.gguf_source import gguf_path, read_gguf_source

        path = gguf_path(model, gguf_file)
        source = read_gguf_source(path) if path else None
        says = f" (it says general.name {source.name!r}, organization {source.organization!r})" if source else ""
        raise ConfigError(
            f"the base model is the GGUF file {gguf_file} in the local folder {model!r}, whose metadata records no "
            f"Hub id{says}. The Hub needs `base_model` to be a Hub id: pass --base-model-id ORG/NAME (the model "
            "the GGUF file was converted from)."
        )
    if found is None:
        raise ConfigError(
            f"the base model is the local folder {model!r}, which names no Hub model (not a Hugging Face cache "
            "snapshot, no Hub id in its config.json `_name_or_path`). The Hub needs `base_model` to be a Hub id "
            "so that others can load the adapter: pass --base-model-id ORG/NAME (the model it is a copy of)."
        )
    return found
