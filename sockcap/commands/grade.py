"""``sockcap grade``: a folder of submissions built, checked and scored by a teacher's spec.

Only click is imported at the top; the work is :mod:`sockcap.check.grade`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from sockcap.i18n import _

if TYPE_CHECKING:  # imported when a command runs: sockcap --help lists this module's
    from pathlib import Path  # command, and should not pay for pathlib


@click.command(help=_('Build and check every submission as SPEC.toml says, and score it.\n'
               '\n'
               '\b\n'
               'sockcap grade spec.toml --submissions submissions/\n'
               'sockcap grade spec.toml --submissions /autograder/submission --single \\\n'
               '     --out /autograder/results --format gradescope\n'
               '\n'
               'Each submission is copied to a temporary folder, built and checked there in a sandbox\n'
               'of its own (its own user, namespaces and cgroup; a network with only lo), bounded in\n'
               'time, memory and processes. Works without root where user namespaces are allowed.'))
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--submissions", "folder", type=click.Path(file_okay=False), default="submissions", show_default=True, help=_("One folder per student (with --single: this folder is the one submission)."))
@click.option("--single", is_flag=True, help=_("The --submissions folder is one submission (Gradescope's /autograder/submission)."))
@click.option("--out", "out", type=click.Path(file_okay=False), default="grades", show_default=True, help=_("Where each student's report.txt, report.json, check.pcap and results.json go (with --single: directly in it), and grades.csv."))
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help=_("Grade this many submissions at once (each in its own sandbox)."))
@click.option("--student", "students", multiple=True, metavar="NAME", help=_("Grade only this student's submission (repeat); the other rows of grades.csv stay as their report.json says."))
@click.option("--format", "format_", type=click.Choice(["text", "json", "gradescope"]), default="text", show_default=True, help=_("What is printed on stdout."))
def grade(spec: str, folder: str, single: bool, out: str, jobs: int,
          students: tuple[str, ...], format_: str) -> None:
    from pathlib import Path

    from sockcap.check.cgroup import cgroup_missing
    from sockcap.check.classroom import pick_students, run_parallel, write_grades_csv
    from sockcap.check.grade import grade_submission, gradescope_results, submissions
    from sockcap.check.sandbox import enter_user_namespace
    from sockcap.check.spec import load_spec
    from sockcap.output import Output
    from sockcap.owner import check_output_path
    from sockcap.signals import sigterm_raises

    output = Output()

    def note(text: str) -> None:
        output.note(_("sockcap: {text}").format(text=text))

    check_output_path(out)
    the_spec = load_spec(spec)
    folders = pick_students(submissions(Path(folder), single), () if single else students,
                            Path(folder))
    enter_user_namespace()
    missing = cgroup_missing(the_spec.limits)
    if missing:
        note(missing)

    def one(sub: Path) -> Any:
        target = Path(out) if single else Path(out) / sub.name
        return grade_submission(the_spec, sub, target, lambda _: None)

    with sigterm_raises():
        results = run_parallel(folders, one, jobs,
                               lambda sub: note(_("grading {sub}").format(sub=sub.name)))
    write_grades_csv(Path(out), single)
    _print(results, format_, single, gradescope_results, output)
    output.flush()
    sys.exit(0)


def _print(results: list[Any], format_: str, single: bool, gradescope: Any, output: Any) -> None:
    """The grades on stdout (through :class:`~sockcap.output.Output`, as every command)."""
    import json

    if format_ == "gradescope":
        data: Any = gradescope(results[0]) if single else {g.student: gradescope(g) for g in results}
        output.line(json.dumps(data, indent=1))
    elif format_ == "json":
        output.line(json.dumps([{"student": g.student, "score": g.score, "max_score": g.max_score,
                                 "status": g.status, "tests": g.tests} for g in results],
                               indent=1))
    else:
        for g in results:
            failed = [t["name"] for t in g.tests if t["status"] == "failed"]
            output.line(f"{g.student:<20} {g.score:g}/{g.max_score:g}"
                        + (f"  failed: {', '.join(failed)}" if failed else ""),
                        "red" if failed else "")
