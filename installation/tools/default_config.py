"""Writes assets/config/default.yaml from the config schema: every key, its default, and its
description as a comment, so the file a technician copies can never miss or misdescribe a key.

    python -m installation.tools.default_config           rewrite the shipped file
    python -m installation.tools.default_config --check   exit 1 if it differs from the schema
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from installation import paths
from installation.config import Config

WIDTH = 96
HEADER = """\
# Bias Mirror kiosk configuration: every key, with its default and what it does.
# Generated from the schema (installation/config.py) by
# `python -m installation.tools.default_config`; do not edit it here. Copy it (for example to
# /etc/bias-mirror/kiosk.yaml), edit the copy, and check it with
# `bias-mirror validate-config FILE` (unknown keys are errors, so a typo never falls back to a
# default). Relative paths are resolved against the file's folder, then the working directory,
# then the project root.
"""


def _args(annotation: Any) -> tuple[Any, ...]:
    """The members of a union (X | None), or the annotation itself."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return (annotation,)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    for arg in _args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _describe(field: FieldInfo) -> str:
    choices = [
        str(choice)
        for arg in _args(field.annotation)
        if typing.get_origin(arg) is Literal
        for choice in typing.get_args(arg)
    ]
    text = str(field.description or "")
    return text + (f" One of: {', '.join(choices)}." if choices else "")


def _scalar(value: Any) -> str:
    """One YAML value on one line, quoted where YAML needs it ('0' stays a string)."""
    if isinstance(value, Path) and value.is_relative_to(paths.PROJECT_ROOT):
        # Shipped paths are written relative to the project, never as this machine's path.
        value = value.relative_to(paths.PROJECT_ROOT)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, tuple):
        value = list(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000)
    return text.removesuffix("\n...\n").strip()


def _comment(text: str, indent: str) -> list[str]:
    prefix = f"{indent}# "
    return textwrap.wrap(text, WIDTH, initial_indent=prefix, subsequent_indent=prefix)


def _keys(
    model: type[BaseModel], values: BaseModel | None, indent: str, top: bool = False
) -> list[str]:
    """The YAML lines of `model`'s keys; `values` None writes the defaults of a section that is
    off (commented out by the caller)."""
    lines: list[str] = []
    for name, field in model.model_fields.items():
        if top:
            lines.append("")  # a blank line between top-level sections
        lines += _comment(_describe(field), indent)
        sub = _submodel(field.annotation)
        value = getattr(values, name) if values is not None else field.default
        if sub is not None and isinstance(value, BaseModel):
            lines.append(f"{indent}{name}:")
            lines += _keys(sub, value, indent + "  ")
        elif sub is not None and value is None:
            # Optional and off by default (TLS): its keys, commented out, so they are findable.
            lines += _comment("To use it, replace null with these keys:", indent)
            lines.append(f"{indent}{name}: null")
            lines += [f"{indent}#   {line}" for line in _keys(sub, None, "")]
        elif field.is_required():
            example = (field.examples or ["..."])[0]
            lines.append(f"{indent}{name}: {_scalar(example)}  # required")
        else:
            lines.append(f"{indent}{name}: {_scalar(value)}")
    return lines


def render() -> str:
    """The default config file's text, from the schema's defaults (`Config()`)."""
    return HEADER + "\n".join(_keys(Config, Config(), "", top=True)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=paths.DEFAULT_CONFIG, help="file to write")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(
                f"{args.out} differs from the config schema; regenerate it with "
                "`python -m installation.tools.default_config`",
                file=sys.stderr,
            )
            return 1
        print(f"{args.out}: matches the schema")
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
