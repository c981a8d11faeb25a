"""Render task YAMLs: the shipped suite files and the ones ``lm-forget tasks derive`` writes.

The suite's ``forget_*.yaml`` and ``lm_forget_suite.yaml`` in ``task_configs/`` are generated from the registry
(``data/registry.py: SUITE``) and committed, because lm-eval's ``TaskManager`` indexes YAML files on disk (in the
wheel and in an editable checkout alike). After changing the registry, regenerate them with one command::

    python -m lm_forget.data.yamls

``tests/test_task_yamls.py`` renders them again and fails, naming this command, if the folder differs.
Only ``_forget_template.yaml`` (the shared fields) and ``README.md`` are written by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lm_forget.data.registry import SUITE, TaskSpec, suite_task_names
from lm_forget.paths import task_configs_dir

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "_forget_template.yaml"
GROUP_NAME = "lm_forget_suite"  # must not match forget_*: a matching group breaks the CLI wildcard
REGENERATE = "python -m lm_forget.data.yamls"
MULTI_CONTEXT_OVERRIDES = (
    "# several contexts, one shared continuation: doc_to_text returns the gold index\n"
    "doc_to_text: label\n"
    "doc_to_target: continuation\n"
)


def _comment(text: str) -> str:
    return "".join(f"# {line}\n" for line in text.splitlines()) if text else ""


def render_suite_yaml(spec: TaskSpec) -> str:
    """A suite task: the template plus what truly differs."""
    header = _comment(f"{spec.name}: binarized, deduplicated {spec.source_task} (lm-forget suite). {spec.note}".strip())
    body = f"include: {TEMPLATE_NAME}\ntask: {spec.name}\ndataset_kwargs:\n  forget_task: {spec.name}\n"
    return header + body + (MULTI_CONTEXT_OVERRIDES if spec.multi_context else "")


def template_body() -> str:
    """The template's YAML without its comment header."""
    text = (task_configs_dir() / TEMPLATE_NAME).read_text(encoding="utf-8")
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))


def render_derived_yaml(spec: TaskSpec) -> str:
    """A derived task, self-contained (a user folder cannot ``include`` the installed template)."""
    header = _comment(
        f"{spec.name}: binarized, deduplicated {spec.source_task}, derived by `lm-forget tasks derive`.\n"
        "Visible to lm_eval via --include_path THIS_FOLDER or LM_FORGET_TASKS_DIR."
    )
    kwargs = (
        f"task: {spec.name}\n"
        "dataset_kwargs:\n"
        f"  forget_task: {spec.name}\n"
        f"  source_task: {spec.source_task}\n"
        f"  source_config: {spec.source_config}\n"
        f"  rewrite: {spec.rewrite}\n"
        f"  domain: {spec.domain}\n"
    )
    return header + template_body() + kwargs + (MULTI_CONTEXT_OVERRIDES if spec.multi_context else "")


def render_group_yaml(names: list[str]) -> str:
    """The group averaging the suite (named so that ``forget_*`` does not match it)."""
    tasks = "".join(f"  - {name}\n" for name in names)
    return (
        "# The whole lm-forget suite, averaged (unweighted mean of acc over tasks).\n"
        f"group: {GROUP_NAME}\ntask:\n{tasks}"
        "aggregate_metric_list:\n  - metric: acc\n    aggregation: mean\n    weight_by_size: false\n"
        "  - metric: acc_norm\n    aggregation: mean\n    weight_by_size: false\n"
        "metadata:\n  version: 1.0\n"
    )


def suite_files() -> dict[str, str]:
    """Every generated file of ``task_configs/``: file name -> text (one per suite task, then the group)."""
    files = {f"{spec.name}.yaml": render_suite_yaml(spec) for spec in SUITE}
    files[f"{GROUP_NAME}.yaml"] = render_group_yaml(suite_task_names())
    return files


def stale_suite_files(folder: Path) -> list[Path]:
    """``forget_*.yaml`` files in ``folder`` that no registry entry produces (a task removed from the registry)."""
    wanted = suite_files()
    return sorted(p for p in Path(folder).glob("forget_*.yaml") if p.name not in wanted)


def write_suite_files(folder: Path | None = None) -> list[Path]:
    """Write the generated suite YAMLs into ``folder`` (default: the shipped ``task_configs/``), drop stale ones.

    Returns the files whose content changed (written or removed).
    """
    folder = Path(folder) if folder is not None else task_configs_dir()
    changed: list[Path] = []
    for name, text in suite_files().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    for path in stale_suite_files(folder):
        path.unlink()
        changed.append(path)
    return changed


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    done = write_suite_files()
    logger.info("%d suite task YAML(s) changed in %s%s", len(done), task_configs_dir(),
                "".join(f"\n  {p.name}" for p in done))
