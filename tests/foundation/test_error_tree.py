"""One exception tree: every RRR error class derives from RRRError and is drawn in its docstring."""

import builtins
import importlib
import inspect
import pkgutil
import re

import rrr_live
import rrr_live.errors
import rrr_pipelines.lib
from rrr_live.errors import RRRError


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    modules = ["rrr_pipelines.stack", "rrr_pipelines.stack_cli", "rrr_pipelines.cli.main"]
    for package in (rrr_live, rrr_pipelines.lib):
        prefix = package.__name__ + "."
        modules += [m.name for m in pkgutil.walk_packages(package.__path__, prefix)]
    for name in modules:
        module = importlib.import_module(name)
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == name:
                found[cls_name] = cls
    return found


def test_every_error_class_is_an_rrr_error_and_drawn_in_the_tree() -> None:
    classes = _error_classes()
    assert len(classes) > 30
    stray = sorted(n for n, c in classes.items() if not issubclass(c, RRRError))
    assert stray == []
    tree = rrr_live.errors.__doc__ or ""
    words = set(re.findall(r"\b([A-Z]\w+)\b", tree))
    assert set(classes) <= words, set(classes) - words
    # and the drawing names no error class that does not exist
    named = {n for n in re.findall(r"\b([A-Z]\w*(?:Error|Transition))\b", tree)}
    assert {n for n in named if not hasattr(builtins, n)} <= set(classes)
