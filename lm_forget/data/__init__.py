"""The suite's data layer: one source of truth for every binarized doc.

``lm_eval`` YAMLs, the trainer and the analysis all read the docs built here, so the forget trainer
trains on exactly the prompt that lm-eval scores. Import from the submodules; this package imports
nothing heavy.
"""
