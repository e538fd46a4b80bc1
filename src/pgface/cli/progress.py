"""The indexer's progress on stderr: a rich bar, with each failure printed above it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pgface.cli.common import err, shown
from pgface.errors import counted
from pgface.index import Failure, IndexReport, PhotoWarning
from pgface.paths import readable


class IndexProgress:
    """A rich progress bar fed by the indexer's callback; failures print above it as
    `failed FILE: REASON` (a photo already indexed is not a failure: the summary counts it)."""

    def __init__(self, enabled: bool, label: str = "indexing") -> None:
        self.enabled = enabled
        self.label = label
        self.progress = Progress(
            TextColumn("{task.fields[stage]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            # Only on a terminal: rich draws the finished bar once more when it stops, which
            # a log file (cron's, `2>file`) would keep as a line of box characters.
            console=err, disable=not (enabled and err.is_terminal),
        )
        self.task = self.progress.add_task(label, total=None, rate="", stage=label)
        self.report: IndexReport | None = None  # the run's, as its last batch left it
        self.before = (0, 0)  # photos and faces of the runs before it (index, then --pending)

    def stored_so_far(self) -> str | None:
        """What the run stored and committed before it stopped, which stays: None where it
        stored nothing, or had handled every file (what failed after that says so itself)."""
        report = self.report
        if report is None or report.files_done >= report.files:
            return None
        photos, faces = self.before[0] + report.indexed, self.before[1] + report.faces
        return f"{counted(photos, 'photo')} ({counted(faces, 'face')})" if photos else None

    def __enter__(self) -> IndexProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, report: IndexReport, failure: Failure | None) -> None:
        if self.report is not None and report is not self.report:  # the next run's
            self.before = (self.before[0] + self.report.indexed,
                           self.before[1] + self.report.faces)
        self.report = report
        if failure is not None:
            say_failure(failure)
            return
        self.progress.update(
            self.task, total=report.files, completed=report.files_done,
            rate=f"{report.photos_per_second:.1f} photos/s {report.faces_per_second:.1f} faces/s",
            stage=report.stage or self.label,  # the bar is full while the HNSW index is built
        )


def say_failure(failure: Failure) -> None:
    err.print(f"[red]failed[/red] {shown(readable(str(failure)))}",
              markup=True, highlight=False, soft_wrap=True)


def say_empty_folders(report: IndexReport) -> None:
    for folder in report.empty_folders:
        err.print(f"[yellow]warning:[/yellow] {shown(readable(folder))}: no "
                  "photo in this folder (docs/cli.md lists the file suffixes read)",
                  markup=True, highlight=False, soft_wrap=True)


def say_not_pruned(report: IndexReport) -> None:
    for path in report.not_pruned:
        err.print(f"[yellow]warning:[/yellow] {shown(readable(path))}: missing, empty or "
                  "unreadable, so the photos stored under it were not pruned (a share not "
                  "mounted or a disk not plugged in looks the same as a deleted folder); "
                  "`pgface remove` forgets them",
                  markup=True, highlight=False, soft_wrap=True)


def say_passed_over(report: IndexReport) -> None:
    if report.passed_over:
        err.print(f"passed over {report.passed_over} hidden or system files and folders (such "
                  "as .thumbnails and @eaDir; docs/cli.md): name one to index it",
                  highlight=False, soft_wrap=True)


def say_unchanged_failures(report: IndexReport) -> None:
    """The files whose content failed in a run before and that were passed over unchanged:
    a count, not a list (each was printed, with its reason, by the run that failed it; a
    nightly log listed the same thousand empty files every night)."""
    if report.unchanged_failures:
        said = ("file that failed before and is unchanged was not read again (--reread reads "
                "it)" if report.unchanged_failures == 1 else "files that failed before and "
                "are unchanged were not read again (--reread reads them)")
        err.print(f"{report.unchanged_failures} {said}", highlight=False, soft_wrap=True)


def say_excluded(report: IndexReport) -> None:
    if report.excluded:
        what = "file or folder" if report.excluded == 1 else "files and folders"
        err.print(f"excluded {report.excluded} {what} (--exclude, PGFACE_INDEX_EXCLUDE): name "
                  "one to index it",
                  highlight=False, soft_wrap=True)


def say_people_kept(report: IndexReport) -> None:
    if report.people_kept:
        # `people undo` passes over a keep (docs/people.md); this said it took it back, and
        # a user who tried undid an earlier change instead
        err.print(f"kept their people: {counted(report.people_kept, 'face')} of edited photos, "
                  "of photos analysed again (--pending), another pack analysed or found again "
                  "(recorded as a keep in "
                  "`pgface people history`, which `pgface people undo` passes over)",
                  highlight=False,
                  soft_wrap=True)


def file_reasons(items: Sequence[Failure | PhotoWarning]) -> list[dict]:
    """Failures or warnings as `--json` gives them: `{"file": ..., "reason": ...}` each."""
    return [{"file": readable(item.source), "reason": item.reason} for item in items]


def report_dict(report: IndexReport) -> dict:
    """`index --json`'s object (docs/cli.md)."""
    return {
        "files": report.files, "indexed": report.indexed, "skipped": report.skipped,
        "faces": report.faces, "seconds": round(report.seconds, 3),
        "stage_seconds": {stage: round(t, 3) for stage, t in report.timings.items()},
        "failures": file_reasons(report.failures),
        "warnings": file_reasons(report.warnings),
        "empty_folders": [readable(p) for p in report.empty_folders],
        "passed_over": report.passed_over,
        "excluded": report.excluded,
        "unchanged_failures": report.unchanged_failures,
        "people_kept": report.people_kept,
        "moved": report.moved,
        "reanalysed": report.reanalysed,
        "outdated": report.outdated,
        "removed": asdict(report.removed) if report.removed is not None else None,
        "not_pruned": [readable(p) for p in report.not_pruned],
    }
