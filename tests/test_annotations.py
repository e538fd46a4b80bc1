"""The Python API's annotations read as a type checker reads them: a method's annotations are
looked up in its class first, so a method named like a builtin (People.list) is what that name
means in every annotation of the class. mypy is not among the test tools; this reads each
annotation the same way."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import typing

import pgface
from pgface.people import People, Person, PersonFace, PersonPhoto


def _methods_of_pgface_classes() -> typing.Iterator[tuple[str, type, typing.Callable]]:
    """(qualified name, class, function) of every method written in pgface's modules."""
    for found in pkgutil.walk_packages(pgface.__path__, "pgface."):
        # django needs a configured project; __main__ runs the CLI
        if not found.name.startswith("pgface.django") and not found.name.endswith("__main__"):
            importlib.import_module(found.name)
    for name, module in sorted(sys.modules.items()):
        if name != "pgface" and not name.startswith("pgface."):
            continue
        for cls in vars(module).values():
            if not inspect.isclass(cls) or cls.__module__ != name:
                continue
            for method_name, method in vars(cls).items():
                method = method.fget if isinstance(method, property) else method
                function = getattr(method, "__func__", method)
                # written in the module (not made by dataclass or NamedTuple)
                if (inspect.isfunction(function)
                        and function.__code__.co_filename == module.__file__):
                    yield f"{name}.{cls.__qualname__}.{method_name}", cls, function


def test_annotations_read_in_their_class_as_a_type_checker_reads_them() -> None:
    # `-> tuple[list[Person], int]` in People, whose method `list` shadows the builtin there:
    # mypy said "Value of type "list?[Person]" is not indexable" of docs/people.md's example
    unreadable = {}
    for qualified, cls, function in _methods_of_pgface_classes():
        try:
            typing.get_type_hints(function, localns=dict(vars(cls)))
        except Exception as exc:  # noqa: BLE001 - each one named below
            unreadable[qualified] = f"{type(exc).__name__}: {exc}"
    assert not unreadable


def test_people_pages_are_typed_as_builtin_lists() -> None:
    def returns(method: typing.Callable) -> object:
        return typing.get_type_hints(method, localns=dict(vars(People)))["return"]

    assert returns(People.list) == list[Person]
    assert returns(People.page) == returns(People.review) == tuple[list[Person], int]
    assert returns(People.photos) == tuple[list[PersonPhoto], int]
    assert returns(People.faces) == list[PersonFace]
    assert returns(People.face_page) == tuple[list[PersonFace], int]
    assert typing.get_origin(returns(People.history)) is list
