"""The root ``segtool`` command: registers every command group and turns user errors into one line.

Command modules import only typer/rich at top level; torch is imported inside command bodies so
``segtool --help`` stays fast.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from segtool import __version__
from segtool.core.console import print_error, set_quiet
from segtool.core.errors import SegtoolError


class _SegtoolGroup(TyperGroup):
    """Root group: every way a command can fail ends in one ``error: ...`` line on stderr.

    SegtoolError (a user's mistake) exits with its code, an OSError (disk full, permission, read-only
    file system, broken pipe) with 1, a usage error (bad option) with 2 — never a traceback or a
    multi-line box. ``SEGTOOL_DEBUG=1`` lets SegtoolError and OSError through with their traceback.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        plain_metavars(self)
        try:
            code = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                standalone_mode=False, **extra)
        except typer.Abort:
            print_error("aborted")
            code = 1
        except Exception as exc:  # noqa: BLE001 - Click's usage errors, without importing Click internals
            if not _is_usage_error(exc):
                raise
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                print_error(_usage_message(exc))
            code = exc.exit_code
        code = code if isinstance(code, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
            _flush_stdout()  # a full disk or closed pipe must fail here, not at interpreter exit
            return result
        except SegtoolError as exc:
            if os.environ.get("SEGTOOL_DEBUG"):
                raise
            print_error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            if os.environ.get("SEGTOOL_DEBUG"):
                raise
            _silence_stdout_if_broken(exc)
            print_error(os_error_message(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None


# Typer 0.29 shows each value's Python type as its metavar (`<bool>` on flags, `<int range>`,
# `<list[str]>`); --help shows these words instead, and nothing for flags and arguments' types.
_TYPE_METAVARS = {int: "N", float: "NUM", str: "TEXT"}


def plain_metavars(command) -> None:
    """Give every parameter of ``command`` and its subcommands without a metavar a plain one."""
    for sub in (getattr(command, "commands", None) or {}).values():
        plain_metavars(sub)
    make_help_option = getattr(command, "get_help_option", None)
    if callable(make_help_option):  # --help is made per context, outside ``params``
        command.get_help_option = lambda ctx, make=make_help_option: _flag(make(ctx))
    for param in getattr(command, "params", ()):
        if getattr(param, "param_type_name", None) == "argument":
            param.display_type_rich = _no_type  # the name column already says what it is
        elif getattr(param, "metavar", "") is None:
            param.metavar = _metavar(param)


def _flag(option):
    if option is not None and option.metavar is None:
        option.metavar = ""
    return option


def _no_type(ctx=None) -> None:
    return None


def _metavar(param) -> str:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    descriptor = getattr(param, "type_descriptor", None)
    if getattr(descriptor, "is_choice", False):
        return "|".join(str(getattr(c, "value", c)) for c in descriptor.choices or ())
    if getattr(descriptor, "is_path", False):
        return "PATH"
    annotation = getattr(descriptor, "annotation", None)
    element = (getattr(annotation, "__args__", None) or (annotation,))[0]  # list[str] -> str
    if element is not None and getattr(element, "__name__", "") in ("Path", "PurePath"):
        return "PATH"
    return _TYPE_METAVARS.get(element, "VALUE")


def os_error_message(exc: OSError) -> str:
    """``<file>: <why>``, e.g. ``out.png: No space left on device``; stdout when no file is named."""
    why = exc.strerror or str(exc)
    if exc.errno == errno.EPIPE:
        return "stdout: the reading end of the pipe closed (broken pipe)"
    where = exc.filename if exc.filename is not None else "stdout"
    return f"{where}: {why}"


def _flush_stdout() -> None:
    for stream in (sys.stdout,):
        try:
            stream.flush()
        except ValueError:  # closed by the command itself
            pass


def _silence_stdout_if_broken(exc: OSError) -> None:
    # Python would flush stdout again at exit and print a second, traceback-like message.
    if exc.errno in (errno.EPIPE, errno.ENOSPC, errno.EIO) and exc.filename is None:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass


def _is_usage_error(exc: Exception) -> bool:
    return isinstance(getattr(exc, "exit_code", None), int) and callable(getattr(exc, "format_message", None))


def _usage_message(exc: Exception) -> str:
    """``--threads: 0 is not in the range x>=1 (see 'segtool train --help')``."""
    message = getattr(exc, "message", None)
    hint = getattr(exc, "param_hint", None)
    param = getattr(exc, "param", None)
    if hint is None and param is not None:
        hint = "/".join(getattr(param, "opts", None) or [getattr(param, "name", "") or ""])
    if isinstance(hint, (list, tuple)):
        hint = "/".join(hint)
    if message and hint and type(exc).__name__ == "BadParameter":
        text = f"{str(hint).strip(chr(39))}: {message}"
    else:
        text = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and getattr(ctx, "command_path", None):
        text += f" (see '{ctx.command_path} --help')"
    return text


app = typer.Typer(
    name="segtool",
    cls=_SegtoolGroup,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    help="Semantic-segmentation toolbox: datasets, models, training, evaluation, boxes, style transfer, masks.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segtool {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool | None, typer.Option(
        "--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    set_quiet(False)  # each invocation starts loud; a command's --quiet switches it off


def _register() -> None:
    from segtool.cli import (
        augment,
        boxes,
        compare,
        data,
        deploy,
        download,
        infer,
        info,
        models,
        style,
        train,
        viz,
    )

    for module in (info, data, download, models, train, infer, compare, deploy, boxes, style, viz, augment):
        app.add_typer(module.app)


_register()


def main() -> None:
    app(prog_name="segtool")
