"""Data set-up mistakes get a message that names the real problem (one line, exit 2, nothing written).

- a mirror split path that is a folder was reported as "missing";
- a read-only ``LM_FORGET_CACHE`` raised a raw OSError (now: where to point it);
- ``tasks derive cola`` wrote a ``forget_cola`` that clashes with the suite's own.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from lm_forget.cli import main

COLA = Path("nyu-mll") / "glue" / "cola"


def last_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "unexpected" not in err, err
    return err.splitlines()[-1]


def test_a_split_that_is_a_folder_is_named(tmp_path, mirror_dir, monkeypatch, capsys):
    root = tmp_path / "hf"
    shutil.copytree(mirror_dir / COLA, root / COLA)
    (root / COLA / "train.jsonl").unlink()
    (root / COLA / "train.jsonl").mkdir()
    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(root))
    assert main(["tasks", "show", "forget_cola"]) == 2
    err = last_error(capsys)
    assert f"local mirror split {root / COLA / 'train.jsonl'} is a folder, not a file" in err
    assert "missing" not in err


def test_an_unwritable_cache_says_where_to_point_it(tmp_path, mirror_dir, monkeypatch, capsys):
    from lm_forget.data import cache

    def read_only(*args, **kwargs):  # what a read-only filesystem answers to the first write (the lock)
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "cache"))

    monkeypatch.setenv("LM_FORGET_DATA_DIR", str(mirror_dir))
    monkeypatch.setenv("LM_FORGET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "lock_for", read_only)
    assert main(["tasks", "show", "forget_cola"]) == 2
    err = last_error(capsys)
    assert f"cannot write the docs cache in {tmp_path / 'cache'} (Read-only file system)" in err
    assert "point LM_FORGET_CACHE at a writable folder" in err


def test_deriving_a_suite_source_is_refused(tmp_path, capsys):
    out = tmp_path / "derived"
    assert main(["tasks", "derive", "cola", "--out", str(out)]) == 2
    err = last_error(capsys)
    assert "'cola' is already in the suite as forget_cola" in err and "Nothing was written" in err
    assert not out.exists()
