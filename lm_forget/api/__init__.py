"""The notebook API behind ``lm_forget.evaluate`` / ``train`` / ``analyze`` / ``Study`` (see README "Python API").

Each module imports its heavy dependencies inside its functions; ``lm_forget/__init__.py`` re-exports the names
lazily, so ``import lm_forget`` stays cheap.
"""
