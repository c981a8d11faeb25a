"""Named accelerate launchers: ``launcher: [zero3]`` in a run config means ``accelerate launch --config_file ...``.

The shipped configs live in ``configs/accelerate/`` (in the wheel: ``lm_forget/accelerate_configs/``). A
launcher list whose first element is one of their names, or a path to an accelerate YAML, is expanded to
``accelerate launch --config_file <file>`` followed by the remaining elements (e.g. ``--num_processes 4``);
any other list is used as given (``[accelerate, launch, --multi_gpu]``, ``[torchrun, --nproc_per_node, "8"]``).
"""

from __future__ import annotations

from pathlib import Path

from lm_forget.errors import ConfigError

_PACKAGED = Path(__file__).resolve().parents[1] / "accelerate_configs"
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


def accelerate_config_dir() -> Path:
    """The folder of the shipped accelerate configs (the wheel's copy, else the source tree's)."""
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def launcher_names() -> list[str]:
    """Names of the shipped accelerate configs (``ddp``, ``cpu_ddp``, ``fsdp2``, ``zero3``, ``zero3_offload``)."""
    folder = accelerate_config_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def resolve_launcher(launcher: list[str]) -> list[str]:
    """The command prefix a training step runs under (empty: train in this process)."""
    if not launcher:
        return []
    head, rest = str(launcher[0]), [str(part) for part in launcher[1:]]
    if head in launcher_names():
        return ["accelerate", "launch", "--config_file", str(accelerate_config_dir() / f"{head}.yaml"), *rest]
    if head.endswith((".yaml", ".yml", ".json")):
        path = Path(head).expanduser()
        if not path.is_file():
            raise ConfigError(f"launcher: accelerate config {head} not found; shipped names: "
                              f"{', '.join(launcher_names())}.")
        return ["accelerate", "launch", "--config_file", str(path.resolve()), *rest]
    return [head, *rest]
