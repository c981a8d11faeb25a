"""``lm_forget.Study``: a whole study (``lm-forget run``) from Python, its results as :class:`StudyResults`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lm_forget.api.study_results import StudyResults
    from lm_forget.run.config import RunConfig
    from lm_forget.run.graph import Plan
    from lm_forget.run.runner import RunSummary

log = logging.getLogger(__name__)


class Study:
    """A study as ``lm-forget run CONFIG`` runs it: eval -> fine-tune -> eval -> forget -> eval -> analysis.

    Example::

        study = lm_forget.Study("configs/study/tiny_cpu.yaml", run_dir="runs/tiny")
        results = study.run()           # finished steps are skipped, as with `lm-forget run`
        results.findings.lines()

    Args:
        config: a run config YAML path, its parsed mapping (relative paths resolve against ``base_dir``), or a
            :class:`~lm_forget.run.config.RunConfig`.
        run_dir: where the study's steps write (overrides the config's ``run_dir``).
        base_dir: what relative paths in a mapping resolve against (default: the current directory).
    """

    def __init__(self, config: str | Path | Mapping[str, Any] | RunConfig, *, run_dir: str | Path | None = None,
                 base_dir: str | Path | None = None) -> None:
        from lm_forget.run.config import RunConfig, load_run_config, run_config_from_dict

        overrides = {"run_dir": str(Path(run_dir).resolve())} if run_dir is not None else {}
        if isinstance(config, RunConfig):
            self.config = config.model_copy(update=overrides) if overrides else config
        elif isinstance(config, Mapping):
            self.config = run_config_from_dict({**dict(config), **overrides}, base_dir=base_dir or Path.cwd())
        else:
            self.config = load_run_config(config, overrides=overrides)
        self._plan: Plan | None = None

    @property
    def run_dir(self) -> Path:
        """The folder holding the study's steps."""
        return self.config.run_path

    @property
    def plan(self) -> Plan:
        """The study's steps (:func:`lm_forget.run.build_plan`)."""
        if self._plan is None:
            from lm_forget.run.graph import build_plan

            self._plan = build_plan(self.config)
        return self._plan

    def status(self) -> RunSummary:
        """What :meth:`run` would do, step by step (a dry run; nothing is written)."""
        from lm_forget.run.runner import execute

        return execute(self.plan, dry_run=True)

    def run(self, *, shard: tuple[int, int] | None = None) -> StudyResults:
        """Run every step not done yet (``shard=(i, n)``: this process's share), then return :meth:`results`."""
        from lm_forget.run.runner import execute

        summary = execute(self.plan, shard=shard)
        log.info("study %s: %d step(s) ran", self.config.name, summary.count("ran"))
        return self.results()

    def results(self) -> StudyResults:
        """The study's results, read from its analyze step's output (an error if that step has not finished)."""
        from lm_forget.api.study_results import StudyResults
        from lm_forget.errors import DataError

        steps = [s for s in self.plan.steps if s.kind == "analyze"]
        if not steps:
            raise DataError(f"study {self.config.name}: its config has no analyze stage, so it has no results.")
        step = steps[0]
        if not step.is_done():
            raise DataError(f"study {self.config.name}: the analyze step has not finished in {self.run_dir}; "
                            "call .run() first (or `lm-forget run`).")
        return StudyResults.read(step.output)
