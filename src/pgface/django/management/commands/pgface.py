"""`manage.py pgface ...`: pgface's command line (index, search, people, stats, ...) on this
project's database, with its settings from settings.DATABASES and settings.PGFACE.

    python manage.py pgface index /srv/photos
    python manage.py pgface people cluster
    python manage.py pgface people name "Yao Ming" 12
"""

from __future__ import annotations

import os
from argparse import REMAINDER, ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager

import click
from django.core.management.base import BaseCommand, CommandError

from pgface.django import conf


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Command(BaseCommand):
    help = "Run a pgface command (index, search, people ...) on this project's database."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("args", nargs=REMAINDER, help="pgface's own arguments, e.g. index .")

    def run_from_argv(self, argv: list[str]) -> None:
        # everything after `pgface` is pgface's, --help included
        self._called_from_command_line = True
        self.execute(*argv[2:], traceback=False, no_color=False, force_color=False,
                     skip_checks=True, stdout=None, stderr=None)

    def handle(self, *args: str, **options: object) -> None:
        from pgface.cli import app

        with _environment(conf.environment(conf.pgface_settings())):
            try:
                code = app(args=list(args), prog_name="manage.py pgface", standalone_mode=False)
            except click.exceptions.Exit as exc:
                code = exc.exit_code
            except click.ClickException as exc:
                raise CommandError(exc.format_message()) from None
        if code:
            raise CommandError(f"pgface {' '.join(args[:2])} failed (exit code {code})",
                               returncode=code)
