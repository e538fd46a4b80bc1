"""Help text metavars in the usual form: `PHOTO`, `[PATHS]...`, `--top INTEGER`, and nothing
after a flag. Typer 0.2x writes `{photo}`, `<int>` and `<bool>`; these two methods of its
parameter classes are what it asks, so they are replaced here, once, at import.

Also flowed paragraphs: in its rich mode Typer lists a command by the first paragraph of its
docstring, and shows the later paragraphs of `--help`, with the docstring's own line breaks
kept, so a paragraph that wraps in the source broke mid-sentence on the terminal."""

from __future__ import annotations

import inspect
from typing import Any

import click
import typer
from typer.core import TyperArgument, TyperOption

_NAMES = {"int": "INTEGER", "float": "FLOAT", "str": "TEXT"}


def _option_type(self: TyperOption, ctx: click.Context) -> str | None:
    if self.is_flag or self.count:
        return None  # a flag takes no value: nothing to show
    if self.metavar is not None:
        return self.metavar
    label = self.display_type(ctx).strip("<>").removesuffix(" range")  # `<int range>`
    if label.startswith("list[") and label.endswith("]"):
        label = label[5:-1]  # a repeatable option takes one value each time: `--root PATH`
    return _NAMES.get(label, label.upper())


def _argument_usage(self: TyperArgument) -> str:
    name = (self.metavar or self.name or "").upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


def _argument_type(self: TyperArgument, ctx: click.Context) -> str | None:
    return None  # the argument's name says what it is; `<list[Path]>` says nothing more


def _argument_name(self: TyperArgument) -> str:
    return (self.metavar or self.name or "").upper() + ("..." if self.nargs != 1 else "")


def _argument_display_name(self: TyperArgument) -> str:
    """An argument's name as the usage line has it (`PERSON`), in the help's list of arguments
    too, and in an error's hint: Typer 0.29 lists them by this raw name, lower case unless
    given a metavar (`people merge --help` listed `SOURCE` and `target`, probe clidocs19)."""
    return (self.metavar or self.name or "").upper()


def install() -> None:
    patches: dict[type, dict[str, Any]] = {
        TyperOption: {"display_type_rich": _option_type},
        TyperArgument: {"_usage_display_name": _argument_usage,
                        "display_type_rich": _argument_type,
                        "_rich_display_name": _argument_name,
                        "display_name_raw": property(_argument_display_name)},
    }
    for cls, methods in patches.items():
        for method, replacement in methods.items():
            if hasattr(cls, method):  # another typer version: its own form stays
                setattr(cls, method, replacement)


def flow_command_summaries(app: typer.Typer) -> None:
    """Give every command of APP (and of its groups) whose docstring has a paragraph spanning
    several lines its help with each paragraph on one line, which the terminal wraps, and its
    first paragraph as the short help the command list shows."""
    for info in app.registered_commands:
        doc = inspect.getdoc(info.callback) if info.callback else None
        if info.short_help is None and info.help is None and doc and "\n" in doc:
            paragraphs = [" ".join(paragraph.split()) for paragraph in doc.split("\n\n")]
            info.short_help = paragraphs[0]
            info.help = "\n\n".join(paragraphs)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            flow_command_summaries(group.typer_instance)
