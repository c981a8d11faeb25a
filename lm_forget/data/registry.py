"""The suite registry: one ``TaskSpec`` per forget task, naming its built-in lm-eval source."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from lm_forget.errors import ConfigError

SUITE_PREFIX = "forget_"
REWRITES = ("none", "lettered", "inline_list", "auto")


@dataclass(frozen=True)
class TaskSpec:
    """How one forget task is built from an lm-eval multiple-choice task.

    Attributes:
        name: suite task name, ``forget_<source>``.
        source_task: the lm-eval task whose docs and zero-shot prompt are binarized.
        source_config: that task's YAML, relative to ``lm_eval/tasks`` (absolute for derived tasks);
            read directly so a build never indexes lm-eval's ~14k built-in tasks.
        domain: a coarse domain label for tables and plots.
        rewrite: how the prompt changes when it names the options itself: ``none``; ``lettered``
            (a lettered option list, e.g. commonsense_qa: keep the two kept options, relabelled A/B);
            ``inline_list`` ("True, False, or Neither?" becomes "True or Neither?"); ``auto`` detects either.
        multi_context: the source scores several contexts against one shared continuation
            (winogrande); the task YAML then scores ``choices`` as contexts.
        note: a per-task remark for the task table and the YAML.
    """

    name: str
    source_task: str
    source_config: str
    domain: str
    rewrite: str = "none"
    multi_context: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.rewrite not in REWRITES:
            raise ConfigError(f"{self.name}: rewrite must be one of {REWRITES}, got {self.rewrite!r}")


def _spec(source: str, config: str, domain: str, suite: str | None = None, **kw) -> TaskSpec:
    return TaskSpec(name=SUITE_PREFIX + (suite or source), source_task=source, source_config=config,
                    domain=domain, **kw)


SUITE: tuple[TaskSpec, ...] = (
    _spec("piqa", "piqa/piqa.yaml", "commonsense"),
    _spec("social_iqa", "siqa/siqa.yaml", "commonsense", suite="siqa"),
    _spec("hellaswag", "hellaswag/hellaswag.yaml", "commonsense"),
    _spec("winogrande", "winogrande/default.yaml", "commonsense", multi_context=True,
          note="scored as two contexts (the blank filled by each option) sharing one continuation"),
    _spec("commonsense_qa", "commonsense_qa/default.yaml", "commonsense", rewrite="lettered",
          note="the prompt lists options A-E; the binarized prompt lists the two kept options as A/B"),
    _spec("sciq", "sciq/sciq.yaml", "science"),
    _spec("arc_easy", "arc/arc_easy.yaml", "science"),
    _spec("arc_challenge", "arc/arc_challenge.yaml", "science"),
    _spec("openbookqa", "openbookqa/openbookqa.yaml", "science"),
    _spec("boolq", "super_glue/boolq/default.yaml", "reading"),
    _spec("race", "race/race.yaml", "reading",
          note="no training split upstream: a deterministic 50/50 carve-out of the test split"),
    _spec("mathqa", "mathqa/mathqa.yaml", "math"),
    _spec("toxigen", "toxigen/toxigen.yaml", "toxicity"),
    _spec("cola", "glue/cola/default.yaml", "language understanding"),
    _spec("sst2", "glue/sst2/default.yaml", "language understanding"),
    _spec("mrpc", "glue/mrpc/default.yaml", "language understanding"),
    _spec("rte", "glue/rte/default.yaml", "language understanding"),
    _spec("qnli", "glue/qnli/default.yaml", "language understanding"),
    _spec("wnli", "glue/wnli/default.yaml", "language understanding"),
    _spec("cb", "super_glue/cb/default.yaml", "language understanding", rewrite="inline_list",
          note='the prompt asks "True, False, or Neither?"; the binarized prompt names only the two kept'),
    _spec("wic", "super_glue/wic/default.yaml", "language understanding"),
)

_BY_NAME = {spec.name: spec for spec in SUITE}


def suite_task_names() -> list[str]:
    """The suite task names, in table order."""
    return [spec.name for spec in SUITE]


def get_suite_spec(name: str) -> TaskSpec | None:
    """The suite spec called ``name`` (``forget_x``), or None."""
    return _BY_NAME.get(name)


def unknown_task_error(name: str, known: list[str]) -> ConfigError:
    """A ConfigError for an unknown task that suggests the nearest known names."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if not close and not name.startswith(SUITE_PREFIX):
        close = difflib.get_close_matches(SUITE_PREFIX + name, known, n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ConfigError(
        f"unknown forget task {name!r}.{hint} `lm-forget tasks list` shows the suite; "
        "`lm-forget tasks derive SOURCE` makes a forget task from any lm-eval multiple-choice task."
    )
