"""The subset of Go's text/template that users type in ``inspect --format``.

docker and podman format ``inspect`` output with Go templates; pidns accepts the part of
that language people actually use, with the same output:

- literal text around actions: ``pid={{.State.Pid}}``;
- fields, nested: ``{{.State.Pid}}``, ``{{ .Config.Cmd }}`` (spaces allowed), ``{{.}}``;
- functions: ``json X`` (compact, as docker's and podman's ``json``), ``upper X``,
  ``lower X``, ``len X``, ``index X KEY...``, ``join X SEP``; a pipeline's last stage
  may be one of them: ``{{.State | json}}``;
- trim markers: ``{{- ...}}`` and ``{{... -}}`` drop the blanks beside the action.

Values print as Go's fmt ``%v`` does: a list as ``[sleep 60]``, a map as
``map[k:v ...]`` (keys sorted), true/false, ``<nil>`` for null. A missing field is an
error naming the fields there are (Go says "can't evaluate field"), never a silent
``<no value>``. ``range``, ``if`` and variables are not supported, and say so.

Pure: no I/O. Raises :class:`pidns.errors.UsageError` only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from pidns.errors import UsageError

_ACTION: Final = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)
_TOKEN: Final = re.compile(r'\s*(?:"((?:[^"\\]|\\.)*)"|`([^`]*)`|([^\s"`|]+)|(\|))')
_FIELD: Final = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.")
_NUMBER: Final = re.compile(r"-?[0-9]+")


class _Lit(str):
    """A literal argument (a quoted string or a number), not a field reference."""


def _fail(fmt: str, reason: str, hint: str | None = None) -> UsageError:
    return UsageError(f"format with {fmt!r}", reason,
                      hint=hint or "use Go template syntax, e.g. '{{.State.Pid}}'")


def gostr(v: object) -> str:
    """``v`` as Go's fmt ``%v`` prints the same JSON value."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        return repr(v).replace("inf", "+Inf").replace("nan", "NaN")
    if isinstance(v, list | tuple):
        return "[" + " ".join(gostr(x) for x in v) + "]"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{gostr(v[k])}" for k in sorted(v)) + "]"
    return str(v)


def gojson(v: object) -> str:
    """``v`` as docker's and podman's ``json`` function writes it: Go's json.Encoder with
    SetEscapeHTML(false), so compact, ``<>&`` kept, U+2028/U+2029 escaped."""
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _field(fmt: str, root: object, path: str) -> object:
    if path == ".":
        return root
    cur = root
    walked = ""
    for name in path[1:].split("."):
        if not isinstance(cur, dict):
            raise _fail(fmt, f"cannot evaluate field {name!r} of {walked or '.'}: it is "
                        f"{_kind(cur)}, not an object",
                        hint=f"print {walked or '.'} itself, e.g. '{{{{json {walked or '.'}}}}}'")
        if name not in cur:
            fields = ", ".join(sorted(cur)) or "(none)"
            raise _fail(fmt, f"no field {name!r} in {walked or '.'}",
                        hint=f"fields of {walked or '.'} are: {fields}")
        cur = cur[name]
        walked += "." + name
    return cur


def _kind(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list | tuple):
        return "a list"
    return "a value"


def _index(fmt: str, v: object, *keys: object) -> object:
    for k in keys:
        if isinstance(v, dict):
            if k not in v:
                raise _fail(fmt, f"index: no key {k!r}",
                            hint=f"keys are: {', '.join(sorted(map(str, v))) or '(none)'}")
            v = v[k]
        elif isinstance(v, list | tuple):
            seq: Sequence[object] = v
            try:
                v = seq[int(str(k))]
            except (ValueError, IndexError) as exc:
                raise _fail(fmt, f"index: {k!r} out of range for a list of {len(seq)}"
                            ) from exc
        else:
            raise _fail(fmt, f"index: cannot index {_kind(v)}")
    return v


def _len(fmt: str, v: object) -> int:
    if isinstance(v, str | list | tuple | dict):
        return len(v)
    raise _fail(fmt, f"len: {_kind(v)} has no length")


def _join(fmt: str, v: object, sep: object) -> str:
    if not isinstance(v, list | tuple):
        raise _fail(fmt, f"join: {_kind(v)} is not a list")
    return str(sep).join(gostr(x) for x in v)


_FUNCS: Final[dict[str, tuple[int, Callable[..., object]]]] = {
    # name -> (number of arguments, -1: at least one; fn(fmt, *args))
    "json": (1, lambda fmt, v: _Lit(gojson(v))),
    "upper": (1, lambda fmt, v: gostr(v).upper()),
    "lower": (1, lambda fmt, v: gostr(v).lower()),
    "len": (1, _len),
    "index": (-1, _index),
    "join": (2, _join),
}
_UNSUPPORTED: Final = ("range", "if", "with", "else", "end", "define", "template", "block",
                       "printf", "print", "println")


def _tokens(fmt: str, body: str) -> list[str | None]:
    """Split an action into arguments; ``None`` stands for a pipe ``|``."""
    out: list[str | None] = []
    pos = 0
    body = body.strip()
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        if m is None or m.end() == pos:
            raise _fail(fmt, f"cannot read {body[pos:]!r}")
        dq, bq, word, pipe = m.groups()
        if pipe:
            out.append(None)
        elif dq is not None:
            try:
                out.append(_Lit(json.loads(f'"{dq}"')))
            except ValueError as exc:
                raise _fail(fmt, f"bad escape in the string \"{dq}\"") from exc
        elif bq is not None:
            out.append(_Lit(bq))
        else:
            out.append(word)
        pos = m.end()
        while pos < len(body) and body[pos].isspace():
            pos += 1
    return out


def _arg(fmt: str, root: object, tok: str) -> object:
    if isinstance(tok, _Lit):
        return str(tok)
    if _FIELD.fullmatch(tok):
        return _field(fmt, root, tok)
    if _NUMBER.fullmatch(tok):
        return int(tok)
    if tok in ("true", "false"):
        return tok == "true"
    if tok == "nil":
        return None
    if tok.startswith("$"):
        raise _fail(fmt, "template variables ($x) are not supported",
                    hint="use fields, e.g. '{{.State.Pid}}'")
    raise _fail(fmt, f"{tok!r} is neither a field (.Name) nor a known function",
                hint=f"functions are: {', '.join(_FUNCS)}; fields start with a dot")


def _call(fmt: str, root: object, words: Sequence[str], piped: tuple[object, ...]) -> object:
    head = words[0]
    if isinstance(head, _Lit) or head not in _FUNCS:
        if head in _UNSUPPORTED:
            raise _fail(fmt, f"'{head}' is not supported by pidns",
                        hint="pidns takes fields and json/upper/lower/len/index/join")
        if len(words) + len(piped) != 1:
            raise _fail(fmt, f"{head!r} is not a function, so it takes no arguments",
                        hint=f"functions are: {', '.join(_FUNCS)}")
        return _arg(fmt, root, head)
    nargs, fn = _FUNCS[head]
    args = [_arg(fmt, root, w) for w in words[1:]] + list(piped)
    if (nargs >= 0 and len(args) != nargs) or (nargs < 0 and not args):
        want = f"{nargs}" if nargs >= 0 else "at least 1"
        raise _fail(fmt, f"{head} takes {want} argument(s), got {len(args)}")
    return fn(fmt, *args)


def _eval(fmt: str, body: str, root: object) -> str:
    toks = _tokens(fmt, body)
    if not toks:
        raise _fail(fmt, "empty action {{}}")
    stages: list[list[str]] = [[]]
    for t in toks:
        if t is None:
            stages.append([])
        else:
            stages[-1].append(t)
    if any(not s for s in stages):
        raise _fail(fmt, "a pipeline stage is empty")
    value = _call(fmt, root, stages[0], ())
    for stage in stages[1:]:
        value = _call(fmt, root, stage, (value,))
    return value if isinstance(value, _Lit) else gostr(value)


def render(fmt: str, obj: Any) -> str:
    """``fmt`` (a Go template, the supported subset) applied to ``obj`` (JSON-like).

    Raises:
        UsageError: a syntax error, an unsupported construct, or a field that ``obj``
            does not have (the message lists the fields there are).
    """
    out: list[str] = []
    pos = 0
    for m in _ACTION.finditer(fmt):
        lit = fmt[pos:m.start()]
        if m.group(1):
            lit = lit.rstrip()
        out.append(lit)
        if "{{" in lit:
            raise _fail(fmt, "'{{' inside an action", hint="close each '{{' with '}}'")
        out.append(_eval(fmt, m.group(2), obj))
        pos = m.end()
        if m.group(3):
            while pos < len(fmt) and fmt[pos].isspace():
                pos += 1
    tail = fmt[pos:]
    if "{{" in tail:
        raise _fail(fmt, "unclosed action: '{{' without '}}'", hint="close each '{{' with '}}'")
    out.append(tail)
    return "".join(out)
