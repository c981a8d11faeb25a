"""Forgetting methods as registered units: label rules and ``compute_loss`` trainers (see docs/methods.md)."""

from lm_forget.train.methods.registry import METHODS, Method, get_method, method_names, register_method

__all__ = ["METHODS", "Method", "get_method", "method_names", "register_method"]
