"""``torch.export`` with dynamic batch / height / width, and naming the line that prevents them.

torch decides (``Dim.AUTO``) which input sides stay symbolic; a size rule (H % 32 == 0) or a lower
bound keeps a side dynamic, a ``reshape(..., 64, ...)`` fixes it. When a side comes out fixed, the
trace is repeated with that side required dynamic while symbolic-shapes' log is watched: the step
that fixes it (``s54 = 96``) is reported with the innermost frame outside torch (the model's line).
"""

from __future__ import annotations

import logging
import re
import traceback
import warnings
from pathlib import Path

import torch

from segtool.core.errors import SegtoolError

AXES = {0: "batch", 2: "height", 3: "width"}


def _export(model, example: torch.Tensor, dims: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.export.export(model, (example,), dynamic_shapes={"images": dims})


def trace_program(model, example: torch.Tensor, static: tuple[int, int] | None, name: str):
    """(ExportedProgram, {"batch": bool, "height": bool, "width": bool}: which sides stay dynamic)."""
    from torch.export import Dim

    axes = (0,) if static is not None else (0, 2, 3)
    try:
        program = _export(model, example, {axis: Dim.AUTO for axis in axes})
    except Exception as exc:  # noqa: BLE001 - torch.export raises many kinds; the first line says what
        raise SegtoolError(f"model {name}: torch.export failed ({type(exc).__name__}: "
                           f"{str(exc).strip().splitlines()[0][:200]})") from None
    shape = [n for n in program.graph.nodes if n.op == "placeholder"][-1].meta["val"].shape
    from torch.fx.experimental.symbolic_shapes import is_concrete_int  # a SymInt can hold a constant

    dynamic = {AXES[axis]: not is_concrete_int(shape[axis]) for axis in AXES}
    fixed = [axis for axis in axes if not dynamic[AXES[axis]]]
    if fixed:
        where = specialising_site(model, example, axes)
        sides = " and ".join(AXES[a] for a in fixed)
        advice = (f"; export with --static {example.shape[2]}x{example.shape[3]} (any fixed HxW)"
                  if 0 not in fixed else "")
        raise SegtoolError(f"model {name}: cannot export with a dynamic {sides}: {where}{advice}")
    return program, dynamic


def specialising_site(model, example: torch.Tensor, axes: list[int]) -> str:
    """'<file>:<line> (<code>) fixes <side> to <n>', from the guard that made a side constant."""
    from torch.export import Dim

    found: list[tuple[str, traceback.FrameSummary | None]] = []
    symbols: dict[str, str] = {}  # s54 -> "width"
    torch_dir = str(Path(torch.__file__).parent)
    here = str(Path(__file__))

    class Watch(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            created = re.match(r"create_symbol (s\d+) = \d+ for .*size\(\)\[(\d)\]", message)
            if created and int(created.group(2)) in AXES:
                symbols[created.group(1)] = AXES[int(created.group(2))]
            if re.match(r"eval Eq\(s\d+, \d+\)|set_replacement s\d+ = \d+ ", message):
                frames = [f for f in traceback.extract_stack()
                          if not f.filename.startswith(torch_dir) and f.filename != here
                          and "/logging/" not in f.filename]
                guard = message.split(" [")[0].split(" (")[0].split(" ", 1)[1]
                found.append((guard, frames[-1] if frames else None))

    logger = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    handler, level, propagate, handlers = Watch(), logger.level, logger.propagate, logger.handlers
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False  # torch's own handlers would print the whole INFO log
    try:
        _export(model, example, {axis: Dim.DYNAMIC for axis in axes})
    except Exception:  # noqa: BLE001,S110 - the failure is expected; the log says where it came from
        pass
    finally:
        logger.handlers = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    if not found:
        return "torch.export fixed it to the example's size (no source line found)"
    guard, frame = found[0]
    guard = re.sub(r"s\d+", lambda m: symbols.get(m.group(0), m.group(0)), guard)
    if frame is None:
        return f"torch.export added the guard {guard}"
    return f"{frame.filename}:{frame.lineno} ({(frame.line or '').strip()[:80]}) fixes {guard}"
