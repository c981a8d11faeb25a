"""The study's non-training steps, one module each: ``features``, ``analyze`` (with its inputs assembled by
``analyze_inputs``) and ``push``. Each ``run_*`` takes a planned step and the runner's context and returns the
step's record."""
