"""The Go-template subset of ``inspect --format`` (expected outputs are Go's)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pidns.errors import UsageError
from pidns.ops.template import gojson, gostr, render

OBJ = {
    "Id": "f4b732de2a3c",
    "Name": "web",
    "State": {"Pid": 4541, "Status": "running", "Running": True, "ExitCode": 0,
              "Health": None, "StartedAt": "2026-11-24T10:04:23Z"},
    "Config": {"Cmd": ["sleep", "60"], "Env": ["PATH=/bin", "A=b c"],
               "Labels": {"b": "2", "a": "x<y&z"}, "Hostname": "web"},
    "Mounts": [],
}


@pytest.mark.parametrize(("fmt", "want"), [
    ("{{.State.Pid}}", "4541"),
    ("{{ .State.Pid }}", "4541"),
    ("{{.Name}}", "web"),
    ("{{.Id}}", "f4b732de2a3c"),
    ("pid={{.State.Pid}} name={{.Name}}\n", "pid=4541 name=web\n"),
    ("{{.Config.Cmd}}", "[sleep 60]"),
    ("{{.Config.Env}}", "[PATH=/bin A=b c]"),
    ("{{.Mounts}}", "[]"),
    ("{{.State.Running}}", "true"),
    ("{{.State.Health}}", "<nil>"),
    ("{{.Config.Labels}}", "map[a:x<y&z b:2]"),
    ("{{index .Config.Labels \"a\"}}", "x<y&z"),
    ("{{index .Config.Cmd 1}}", "60"),
    ("{{len .Config.Cmd}}", "2"),
    ("{{join .Config.Cmd \" \"}}", "sleep 60"),
    ("{{.Name | upper}}", "WEB"),
    ("{{lower \"ABC\"}}", "abc"),
    ("a {{- .Name -}} b", "awebb"),
    ("no actions at all", "no actions at all"),
    ("", ""),
])
def test_render(fmt: str, want: str) -> None:
    assert render(fmt, OBJ) == want


def test_json_is_go_marshal() -> None:
    got = render("{{json .State}}", OBJ)
    assert json.loads(got) == OBJ["State"]
    assert ", " not in got
    assert ": " not in got
    assert got.startswith('{"Pid":4541,')
    # docker's and podman's json function does not escape HTML characters
    assert render("{{json .Config.Labels}}", OBJ) == '{"b":"2","a":"x<y&z"}'
    assert render("{{.State | json}}", OBJ) == got
    assert json.loads(render("{{json .}}", OBJ)) == OBJ


@pytest.mark.parametrize(("v", "want"), [
    (None, "<nil>"), (True, "true"), (False, "false"), (0, "0"), (2.0, "2"),
    ([1, [2, 3]], "[1 [2 3]]"), ({}, "map[]"), ("s", "s"),
])
def test_gostr(v: object, want: str) -> None:
    assert gostr(v) == want


def test_gojson_compact() -> None:
    assert gojson({"a": [1, "<"]}) == '{"a":[1,"<"]}'
    assert gojson("\u2028") == '"\\u2028"'


def test_unknown_field_names_the_fields() -> None:
    with pytest.raises(UsageError) as info:
        render("{{.State.Foo}}", OBJ)
    msg = str(info.value)
    assert msg.startswith("cannot format with '{{.State.Foo}}': no field 'Foo' in .State")
    assert "hint: fields of .State are: ExitCode, Health, Pid, Running, StartedAt, Status" in msg


def test_unknown_top_field() -> None:
    with pytest.raises(UsageError, match=r"no field 'Nope' in \.; hint: fields of \. are: "):
        render("{{.Nope}}", OBJ)


def test_field_of_a_scalar() -> None:
    with pytest.raises(UsageError, match="it is a number, not an object"):
        render("{{.State.Pid.X}}", OBJ)


@pytest.mark.parametrize("fmt", [
    "{{.Name", "x {{", "{{}}", "{{ }}", "{{foo}}", "{{$x}}", "{{json}}",
    "{{json .Name .Id}}", "{{range .Config.Cmd}}{{.}}{{end}}", "{{if .State.Running}}y{{end}}",
    "{{printf \"%d\" .State.Pid}}", "{{.Name |}}", "{{| upper}}", "{{index .Config.Cmd 9}}",
    "{{index .Config.Labels \"zz\"}}", "{{len .State.Pid}}", "{{\"unterminated}}",
    "{{.Name \"extra\"}}", "{{index .State.Pid 1}}", "{{join .Name \",\"}}",
])
def test_bad_templates_are_usage_errors(fmt: str) -> None:
    with pytest.raises(UsageError) as info:
        render(fmt, OBJ)
    assert str(info.value).startswith(f"cannot format with {fmt!r}: ")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids,
                                                               max_size=3),
    max_leaves=10,
)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{}. |-\"`$abjsonNmeStaPid0 \n")), max_size=40)
       | st.text(), _json)
def test_any_template_gives_text_or_usage_error(fmt: str, obj: object) -> None:
    try:
        out = render(fmt, obj)
    except UsageError:
        return
    assert isinstance(out, str)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30).filter(lambda s: "{{" not in s and "}}" not in s))
def test_literal_text_is_kept(text: str) -> None:
    assert render(text, OBJ) == text
