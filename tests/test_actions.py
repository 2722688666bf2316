"""Typed actions, key names and the screen transform: the data that crosses into environments."""

import io

import pytest
from PIL import Image

from cua.actions import (
    Click,
    Drag,
    ScreenTransform,
    Size,
    Wait,
    action_to_wire,
    check_in_bounds,
    normalize_key,
    parse_action,
)
from cua.errors import ModelOutputError


def png(width: int, height: int, color=(10, 20, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "raw, kind",
    [
        ({"type": "click", "x": 1, "y": 2, "button": "right", "keys": ["SHIFT"]}, "click"),
        ({"type": "double_click", "x": 1, "y": 2}, "double_click"),
        ({"type": "drag", "path": [{"x": 1, "y": 2}, {"x": 3, "y": 4}]}, "drag"),
        ({"type": "keypress", "keys": ["CTRL", "c"]}, "keypress"),
        ({"type": "move", "x": 5, "y": 6}, "move"),
        ({"type": "scroll", "x": 5, "y": 6, "scroll_x": 0, "scroll_y": 300}, "scroll"),
        ({"type": "type", "text": "héllo"}, "type"),
        ({"type": "wait"}, "wait"),
        ({"type": "screenshot"}, "screenshot"),
    ],
)
def test_every_action_type_parses_and_round_trips(raw, kind):
    action = parse_action(raw)
    assert action.type == kind
    assert action_to_wire(action) == {**{k: v for k, v in action_to_wire(action).items()}, **raw}


def test_unknown_fields_are_kept_but_not_required():
    action = parse_action({"type": "click", "x": 1, "y": 2, "new_field": "x"})
    assert isinstance(action, Click) and action_to_wire(action)["new_field"] == "x"


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"type": "teleport", "x": 1}, ["unknown action type 'teleport'", "call_1"]),
        ({"type": "click", "x": 1}, ["bad click action", "y"]),
        ({"type": "click", "x": "left", "y": 2}, ["bad click action", "x"]),
        ({"type": "click", "x": 1, "y": 2, "button": "thumb"}, ["button"]),
        ({"type": "drag", "path": [{"x": 1, "y": 2}]}, ["bad drag action", "path"]),
        ({"type": "keypress", "keys": []}, ["bad keypress action"]),
        ({"type": "keypress", "keys": ["HYPERSPACE"]}, ["unknown key name 'HYPERSPACE'"]),
        ("click", ["must be an object"]),
    ],
)
def test_bad_model_output_is_one_error_naming_the_item(raw, words):
    with pytest.raises(ModelOutputError) as err:
        parse_action(raw, where="computer_call call_1")
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("CTRL", "Control"), ("ctrl", "Control"), ("Control", "Control"),
        ("CMD", "Meta"), ("META", "Meta"), ("SUPER", "Meta"), ("WIN", "Meta"),
        ("OPTION", "Alt"), ("ALT", "Alt"), ("ESC", "Escape"),
        ("ENTER", "Enter"), ("RETURN", "Enter"), ("ARROWLEFT", "ArrowLeft"), ("LEFT", "ArrowLeft"),
        ("PAGEUP", "PageUp"), ("PAGEDOWN", "PageDown"), ("HOME", "Home"), ("END", "End"),
        ("TAB", "Tab"), ("SPACE", "Space"), ("BACKSPACE", "Backspace"), ("DELETE", "Delete"),
        ("INSERT", "Insert"), ("CAPSLOCK", "CapsLock"), ("F1", "F1"), ("f12", "F12"),
        ("/", "/"), ("a", "a"), ("A", "A"),
    ],
)
def test_key_names_in_any_case(name, canonical):
    assert normalize_key(name) == canonical


def test_unknown_key_names_the_key():
    with pytest.raises(ModelOutputError, match="'F13'"):
        normalize_key("F13")


def test_coordinates_outside_the_display_are_bad_output():
    size = Size(1024, 768)
    check_in_bounds(parse_action({"type": "click", "x": 1023, "y": 767}), size)
    with pytest.raises(ModelOutputError, match=r"\(1024, 5\) is outside the 1024x768 display"):
        check_in_bounds(parse_action({"type": "click", "x": 1024, "y": 5}), size)
    drag = parse_action({"type": "drag", "path": [{"x": 1, "y": 1}, {"x": 5, "y": 900}]})
    assert isinstance(drag, Drag)
    with pytest.raises(ModelOutputError, match="outside"):
        check_in_bounds(drag, size)
    check_in_bounds(Wait(), size)


def test_display_sizes_parse_with_a_readable_error():
    assert Size.parse("1280x800") == Size(1280, 800)
    for bad in ("1280", "axb", "0x0", "99999x10"):
        with pytest.raises(ValueError):
            Size.parse(bad)


def test_transform_at_1x_is_identity_and_keeps_the_png():
    t = ScreenTransform(Size(1024, 768), Size(1024, 768))
    assert t.to_screen(100, 200) == (100, 200)
    shot = png(1024, 768)
    assert t.fit_screenshot(shot) is shot


def test_transform_at_2x_scales_points_and_screenshots_both_ways():
    t = ScreenTransform(Size(1024, 768), Size(2048, 1536))
    assert t.to_screen(100, 200) == (200.5, 400.5)  # the centre of the 2x2 block of model pixel (100, 200)
    assert t.to_model(200, 400) == t.to_model(201, 401) == (100, 200)
    for x, y in [(0, 0), (511, 383), (1023, 767)]:
        assert t.to_model(*t.to_screen(x, y)) == (x, y)
    with Image.open(io.BytesIO(t.fit_screenshot(png(2048, 1536)))) as img:
        assert img.size == (1024, 768)


def test_transform_keeps_a_marker_where_the_model_sees_it():
    # A marker drawn at device pixel (400, 300) on a 2x screen is at (200, 150) in the model's image.
    img = Image.new("RGB", (2048, 1536), "white")
    img.paste((255, 0, 0), (396, 296, 404, 304))
    out = io.BytesIO()
    img.save(out, format="PNG")
    t = ScreenTransform(Size(1024, 768), Size(2048, 1536))
    with Image.open(io.BytesIO(t.fit_screenshot(out.getvalue()))) as small:
        r, g, b = small.convert("RGB").getpixel((200, 150))
    assert r > 200 and g < 80 and t.to_screen(200, 150) == (400.5, 300.5)


def test_a_screen_of_another_shape_is_fitted_not_squashed():
    t = ScreenTransform.fitted(Size(1024, 768), Size(1920, 1080))
    assert t.model == Size(1024, 576) and t.sx == t.sy == 1.875
    assert ScreenTransform.fitted(Size(1024, 768), Size(768, 1024)).model == Size(576, 768)
    assert ScreenTransform.fitted(Size(1024, 768), Size(2048, 1536)).model == Size(1024, 768)
    # Every model pixel maps to a screen pixel inside the area it covers, edges included.
    for x in (0, 1, 511, 1023):
        sx, _ = t.to_screen(x, 0)
        assert x * 1.875 <= round(sx) + 0.5 < (x + 1) * 1.875
    with pytest.raises(ValueError, match="squash"):
        ScreenTransform(Size(1024, 768), Size(1920, 1080))
