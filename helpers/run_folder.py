"""The output folder of one fine-tuning run: checked, created and locked before any work; resumable.

While a run is unfinished its folder holds only ``.in-progress/``: a lock file with the process id, the
run's settings (to refuse a resume with other ones) and the training checkpoint. ``finish()`` moves the
outputs in and removes ``.in-progress/``. Nothing outside the folder, and nothing the user put in it,
is ever deleted or overwritten: a folder that already has files is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

WORK = ".in-progress"
LOCK, SETTINGS = "lock", "settings.json"


class RunFolder:
    """One run's output folder; ``work`` holds the lock, the settings and the checkpoint until ``finish()``."""

    def __init__(self, output_dir: str | Path):
        self.out = Path(output_dir).expanduser()
        self.work = self.out / WORK
        self.checkpoint_dir = self.work / "checkpoint"
        self.created_out = False

    @classmethod
    def start(cls, output_dir: str | Path, settings: dict[str, Any], resume: bool = False) -> RunFolder:
        """Create and lock a new run folder, or (``resume``) lock an unfinished one whose settings match."""
        run = cls(output_dir)
        if resume:
            run._reopen(settings)
        else:
            run._create(settings)
        return run

    def _create(self, settings: dict[str, Any]) -> None:
        out = self.out
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"Output {out} is an existing file; pass a new folder name.")
        if out.is_dir() and any(out.iterdir()):
            if (self.work / SETTINGS).exists():
                self._refuse_if_locked()
                raise FileExistsError(
                    f"Output folder {out} holds an unfinished run; add resume=True to continue it, "
                    "or pass a new folder."
                )
            raise FileExistsError(
                f"Output folder {out} already has files; pass a new folder so nothing is overwritten."
            )
        self.created_out = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.work.mkdir()  # atomic: of two runs started together, one gets here first
            self._lock()
            (self.work / SETTINGS).write_text(json.dumps(settings, indent=1))
        except FileExistsError:
            self._refuse_if_locked()
            raise FileExistsError(f"Another run is starting in {out}; pass a new folder.") from None
        except OSError as err:
            blocker = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
            reason = f"{blocker} is a file" if blocker else (err.strerror or str(err)).lower()
            raise OSError(
                f"Cannot create the output folder {out} ({reason}); pass a folder you can write to."
            ) from None

    def _reopen(self, settings: dict[str, Any]) -> None:
        if not (self.work / SETTINGS).exists():
            finished = (self.out / "metrics.json").exists()
            raise FileNotFoundError(
                f"{self.out} holds {'a finished run' if finished else 'no unfinished run'}, so "
                "there is nothing to resume; leave out resume=True and pass a new folder."
            )
        self._lock()
        try:
            saved = json.loads((self.work / SETTINGS).read_text())
        except ValueError:
            saved = {}
        differ = [
            f"the contents of the {key.removesuffix('_sha256')} file"
            if key.endswith("_sha256")
            else f"{key}= ({saved.get(key)!r} then, {settings.get(key)!r} now)"
            for key in sorted(settings.keys() | saved.keys())
            if settings.get(key) != saved.get(key)
        ]
        if differ:
            self.release()
            raise ValueError(
                f"Cannot resume the run in {self.out} with other settings: {'; '.join(differ)}; resume "
                "with the settings it started with, or pass a new folder to start again."
            )

    def _lock(self) -> None:
        """Take the lock (a file made with O_EXCL holding our pid); a dead process's lock is taken over."""
        path = self.work / LOCK
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = self._refuse_if_locked()
                print(f"Taking over the lock of an earlier run (process {pid}) that is no longer running.", flush=True)
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as file:
                file.write(str(os.getpid()))
            return
        raise FileExistsError(f"Another run is starting in {self.out}; pass a new folder.")

    def _refuse_if_locked(self) -> int | None:
        """The pid in the lock file; raises if that process is still running (or the pid is still being written)."""
        path = self.work / LOCK
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return None
        pid = int(text) if text.isdigit() else None
        if pid is None or _running(pid):
            raise FileExistsError(
                f"Another run (process {pid or 'starting'}) is writing into {self.out}; wait for it "
                f"to finish, or pass a new folder (if no run is going, delete {path})."
            )
        return pid

    def has_checkpoint(self) -> bool:
        """Whether training has saved a checkpoint here (worth keeping for a resume)."""
        return any((self.work / name / "trainer_state.json").exists() for name in ("checkpoint", "checkpoint.old"))

    def staging(self) -> Path:
        """An empty folder inside ``.in-progress`` to write the outputs into before ``finish()``."""
        folder = self.work / "final"
        shutil.rmtree(folder, ignore_errors=True)  # ours: left by a run stopped while writing
        folder.mkdir()
        return folder

    def finish(self, staged: Path) -> None:
        """Move the staged outputs into the folder and remove ``.in-progress`` (the lock with it)."""
        for path in staged.iterdir():
            os.replace(path, self.out / path.name)
        shutil.rmtree(self.work)

    def release(self) -> None:
        """Give up the lock (the run stays resumable)."""
        path = self.work / LOCK
        if path.exists() and path.read_text().strip() == str(os.getpid()):
            path.unlink()

    def abandon(self) -> None:
        """Remove what this run created (nothing worth resuming): ``.in-progress``, and the folder if it made it."""
        shutil.rmtree(self.work, ignore_errors=True)
        if self.created_out and self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
