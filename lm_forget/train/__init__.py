"""The forget trainer: finetune / forget (random labels) / flip stages on TRL's SFTTrainer + PEFT LoRA.

Public API: ``lm_forget.train.api.train(config) -> TrainResult`` with ``config`` a
``lm_forget.train.config.ForgetConfig``. Importing this package is cheap; the submodules import
torch/transformers/trl.
"""
