"""Hugging Face Hub integration: model cards rendered from ``hub_cards/`` and pushes of run folders."""
