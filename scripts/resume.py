#!/usr/bin/env python3
"""Resume a run that was killed (kill -9, power or node loss): the one command.

    .venv/bin/python scripts/resume.py [snakemake arguments]      # or: make resume

Run it in the project directory (where the Snakefile is). A Snakemake killed with -9 leaves
its lock in .snakemake/locks, and the next run stops with "Directory cannot be locked".
This script

1. refuses when another Snakemake of this directory is still running (the main process,
   or a job script it started that outlived it): removing the lock under a live run would
   let two runs write the same outputs and the same metadata, and neither could be trusted;
2. removes the stale lock (``snakemake --unlock``) and the temporary files the killed jobs
   were writing (``karstflow.io.atomic_path`` writes ``.<name>.<8 random chars><suffix>``
   beside ``<name>`` and renames it at the end; a kill leaves it behind);
3. runs the workflow again with the given arguments; the default profile's
   ``rerun-incomplete: true`` makes Snakemake redo the jobs the kill left half-done
   (their outputs are marked incomplete in .snakemake/incomplete), and everything whose
   inputs changed, as any run does.

After Ctrl-C none of this is needed: Snakemake removes the lock and the incomplete outputs
itself, and the plain command continues (README, "If a run was interrupted").
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


def _ancestors() -> set[int]:
    """This process and its parents (make, a shell): not another run."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


def running_snakemake(workdir: Path) -> list[tuple[int, str]]:
    """(pid, command line) of the processes working in ``workdir`` whose command line
    names Snakemake: the snakemake command itself, or a job script Snakemake wrote under
    .snakemake/scripts/. Read from /proc (Linux); elsewhere nothing is found."""
    found = []
    mine = _ancestors()
    root = workdir.resolve()
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        if pid in mine:
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd")).resolve()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile, or another user's process
            continue
        if cwd == root and "snakemake" in cmdline:
            found.append((pid, cmdline))
    return found


#: A temporary of karstflow.io.atomic_path (tempfile.mkstemp: 8 characters of [a-z0-9_]).
_ATOMIC_TEMP = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}(?P<suffix>(\.[^.]+)*)$")


def stale_temporaries(workdir: Path) -> list[Path]:
    """The temporaries of atomic writes under results/ and resources/ (only a run that
    was killed leaves them: a finished or failed write renames or removes its own)."""
    found = []
    for top in ("results", "resources"):
        root = workdir / top
        if not root.is_dir():
            continue
        for path in root.rglob(".*"):
            m = _ATOMIC_TEMP.match(path.name)
            if m and m["target"].endswith(m["suffix"]):
                found.append(path)
    return sorted(found)


def main(argv: list[str]) -> int:
    workdir = Path.cwd()
    if not (workdir / "Snakefile").exists():
        print(f"resume: no Snakefile in {workdir}; run it in the project directory", file=sys.stderr)
        return 2
    others = running_snakemake(workdir)
    if others:
        listing = "\n".join(f"  pid {pid}: {cmd[:200]}" for pid, cmd in others)
        print(
            f"resume: Snakemake is still running in {workdir}; its lock is not stale, so it stays.\n"
            f"{listing}\nWait for it to finish, or stop it (kill <pid>), then run this again.",
            file=sys.stderr,
        )
        return 1
    snakemake = [sys.executable, "-m", "snakemake"]
    unlock = subprocess.run([*snakemake, "--unlock", *argv], cwd=workdir)
    if unlock.returncode != 0:
        print("resume: snakemake --unlock failed (above); nothing was rerun", file=sys.stderr)
        return unlock.returncode
    for path in stale_temporaries(workdir):
        print(f"resume: removing {path.relative_to(workdir)} (a write the kill left half-done)", file=sys.stderr)
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return subprocess.run([*snakemake, *argv], cwd=workdir).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
