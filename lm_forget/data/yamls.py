"""Render task YAMLs: the shipped suite files and the ones ``lm-forget tasks derive`` writes."""

from __future__ import annotations

from lm_forget.data.registry import TaskSpec
from lm_forget.paths import task_configs_dir

TEMPLATE_NAME = "_forget_template.yaml"
GROUP_NAME = "lm_forget_suite"  # must not match forget_*: a matching group breaks the CLI wildcard
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
