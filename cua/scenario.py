"""Scenario files: a task, its settings, its variables, the checks that judge it, and a script.

A scenario is YAML validated by pydantic (``cua schema`` prints the JSON Schema). ``{{name}}``
placeholders in the task, instructions, start URL, script and checks take the values of
``variables``: from ``--var k=v``, else the variable's environment variable, else its default.
Secret variables are masked as ``{{name}}`` in every trace, report and log.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from .errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variable(_Strict):
    default: str | None = None
    env: str | None = Field(None, description="environment variable that supplies the value")
    secret: bool = Field(False, description="mask the value in traces, reports and logs")
    description: str | None = None


class EnvSpec(_Strict):
    kind: Literal["browser", "mac", "windows", "ubuntu", "linux"] = "browser"
    headed: bool | None = None
    device_scale_factor: float | None = None
    x_display: str | None = None
    launch: str | None = None
    vm_url: str | None = None
    wheel_step: int | None = Field(
        None, ge=1, le=2000, description="screen pixels one wheel notch scrolls (desktops; default per kind)")


class ModelSpec(_Strict):
    name: str | None = None
    tool: Literal["auto", "preview", "computer"] | None = None
    reasoning: str | None = Field(None, description="reasoning summary: auto, concise, detailed")
    effort: str | None = None
    stateless: bool | None = None


class Limits(_Strict):
    max_steps: int | None = Field(None, ge=1)
    timeout: float | None = Field(None, gt=0)
    token_budget: int | None = Field(None, ge=1)


class SafetySpec(_Strict):
    mode: Literal["auto", "ask", "deny"] = Field(
        "ask", description="checks not in allow: acknowledge (auto), ask on a terminal, or stop")
    allow: list[str] = Field(default_factory=list, description="check codes acknowledged without asking")


class Region(_Strict):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class ScreenshotCheck(_Strict):
    region: Region
    baseline: str = Field(description="PNG path, relative to the scenario file")
    tolerance: float = Field(0.02, ge=0, le=1, description="mean absolute difference allowed, 0..1")


class SelectorCheck(_Strict):
    selector: str
    state: Literal["exists", "visible"] = "visible"
    has_text: str | None = None


class CheckSpec(_Strict):
    """Exactly one of the fields. Browser-only: url_*, text_visible, selector."""

    name: str | None = None
    url_equals: str | None = None
    url_matches: str | None = None
    text_visible: str | None = None
    selector: SelectorCheck | None = None
    screenshot: ScreenshotCheck | None = None
    answer_contains: str | None = None
    answer_matches: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "CheckSpec":
        given = [k for k in self.kinds() if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a check needs exactly one of {', '.join(self.kinds())}; got {given or 'none'}")
        return self

    @staticmethod
    def kinds() -> tuple[str, ...]:
        return ("url_equals", "url_matches", "text_visible", "selector", "screenshot",
                "answer_contains", "answer_matches")

    @property
    def kind(self) -> str:
        return next(k for k in self.kinds() if getattr(self, k) is not None)

    def label(self) -> str:
        if self.name:
            return self.name
        kind = self.kind
        if kind == "selector":
            sel = self.selector
            text = f" with text {sel.has_text!r}" if sel.has_text is not None else ""
            return f"{sel.selector} {'is visible' if sel.state == 'visible' else 'exists'}{text}"
        if kind == "screenshot":
            r = self.screenshot.region
            return f"screenshot {r.width}x{r.height}+{r.x}+{r.y} matches {self.screenshot.baseline}"
        return f"{kind.replace('_', ' ')} {getattr(self, kind)!r}"


class ScriptTurn(_Strict):
    """One scripted model turn: actions (one computer call), a function call, or a final message."""

    reasoning: str | None = None
    actions: list[dict[str, Any]] | None = None
    function: dict[str, Any] | None = None
    message: str | None = None
    safety_checks: list[dict[str, str]] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "ScriptTurn":
        given = [k for k in ("actions", "function", "message") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a script turn needs exactly one of actions, function, message; got {given or 'none'}")
        return self


class Scenario(_Strict):
    name: str
    task: str
    instructions: str | None = None
    env: EnvSpec | Literal["browser", "mac", "windows", "ubuntu", "linux"] = "browser"
    display: str = "1024x768"
    start_url: str | None = None
    allow_domains: list[str] = Field(default_factory=list)
    block_domains: list[str] = Field(default_factory=list)
    allow_schemes: list[str] = Field(
        default_factory=list, description="schemes goto may open besides http, https and about:blank"
    )
    variables: dict[str, Variable] = Field(default_factory=dict)
    model: ModelSpec | str = Field(default_factory=ModelSpec)
    limits: Limits = Field(default_factory=Limits)
    safety: SafetySpec | Literal["auto", "ask", "deny"] | None = Field(
        None, description="pending safety checks: a mode, or {mode, allow: [codes]} (default: ask)")
    checks: list[CheckSpec] = Field(default_factory=list)
    script: list[ScriptTurn] | None = None
    recording: str | None = Field(None, description="recorded run folder, relative to this file")
    serve: str | None = Field(
        None,
        description="a folder (relative to this file, holding index.html) served on 127.0.0.1 "
        "during the run; its address is the variable {{served_url}}",
    )

    # Set by load_scenario, not part of the file.
    path: Path | None = Field(None, exclude=True)
    _served_url: str | None = PrivateAttr(None)

    @property
    def served_url(self) -> str | None:
        """Where ``prepared()`` serves the ``serve`` folder (the value of ``{{served_url}}``)."""
        return self._served_url

    @property
    def env_spec(self) -> EnvSpec:
        return self.env if isinstance(self.env, EnvSpec) else EnvSpec(kind=self.env)

    @property
    def model_spec(self) -> ModelSpec:
        return self.model if isinstance(self.model, ModelSpec) else ModelSpec(name=self.model)

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def recording_dir(self) -> Path:
        if self.recording:
            return self.folder / self.recording
        stem = self.path.name.split(".")[0] if self.path else self.name
        return self.folder / "recordings" / stem

    # -- variables -------------------------------------------------------------------------------
    def resolve_variables(self, overrides: dict[str, str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
        """(values, secrets). A variable with no value anywhere is a ConfigError naming it."""
        overrides = overrides or {}
        unknown = set(overrides) - set(self.variables)
        if unknown:
            raise ConfigError(f"{self._where()}: --var {sorted(unknown)[0]} is not a variable of this scenario "
                              f"(it has: {', '.join(self.variables) or 'none'})")
        values: dict[str, str] = {}
        for name, var in self.variables.items():
            value = overrides.get(name)
            if value is None and var.env:
                value = os.environ.get(var.env)
            if value is None:
                value = var.default
            if value is None:
                hint = f" or set ${var.env}" if var.env else ""
                raise ConfigError(f"{self._where()}: variable {name!r} has no value: pass --var {name}=…{hint}")
            values[name] = value
        secrets = {n: values[n] for n, v in self.variables.items() if v.secret}
        return values, secrets

    def render(self, values: dict[str, str]) -> "Scenario":
        """A copy with every ``{{name}}`` replaced; unknown placeholders are an error."""

        def sub(text: str) -> str:
            def one(match: re.Match[str]) -> str:
                name = match.group(1)
                if name not in values:
                    raise ConfigError(f"{self._where()}: {{{{{name}}}}} is used but not declared in variables")
                return values[name]

            return _PLACEHOLDER.sub(one, text)

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                return sub(value)
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        data = walk(self.model_dump(mode="json", exclude={"path"}))
        rendered = Scenario.model_validate(data)
        rendered.path = self.path
        return rendered

    def settings_dict(self) -> dict[str, Any]:
        """The RunSettings fields this scenario sets (flags are applied on top)."""
        env, model, limits = self.env_spec, self.model_spec, self.limits
        safety = SafetySpec(mode=self.safety) if isinstance(self.safety, str) else self.safety
        data: dict[str, Any] = {
            "task": self.task,
            "instructions": self.instructions,
            "env": env.kind,
            "display": self.display,
            "start_url": self.start_url,
            "allow_domains": self.allow_domains,
            "block_domains": self.block_domains,
            "allow_schemes": self.allow_schemes,
            "model": model.name,
            "tool": model.tool,
            "reasoning_summary": model.reasoning,
            "reasoning_effort": model.effort,
            "stateless": model.stateless,
            "max_steps": limits.max_steps,
            "timeout": limits.timeout,
            "token_budget": limits.token_budget,
            "headed": env.headed,
            "device_scale_factor": env.device_scale_factor,
            "x_display": env.x_display,
            "launch": env.launch,
            "vm_url": env.vm_url,
            "wheel_step": env.wheel_step,
            "safety": safety.mode if safety else None,
            "safety_allow": safety.allow if safety else None,
        }
        return {k: v for k, v in data.items() if v is not None}

    def _where(self) -> str:
        return str(self.path) if self.path else f"scenario {self.name!r}"


@contextmanager
def prepared(
    scenario: Scenario, overrides: dict[str, str] | None = None
) -> Iterator[tuple[Scenario, dict[str, str]]]:
    """The scenario with its variables filled in, and its secrets; serves ``serve`` meanwhile."""
    values, secrets = scenario.resolve_variables(overrides)
    server = None
    if scenario.serve:
        from .testing.demo_server import serve_demo

        server = serve_demo(root=scenario.folder / scenario.serve)
        values["served_url"] = server.base_url
    try:
        rendered = scenario.render(values)
        rendered._served_url = server.base_url if server is not None else None
        yield rendered, secrets
    finally:
        if server is not None:
            server.stop()


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read and validate a scenario file; every problem is one ConfigError naming file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the scenario file ({exc})") from None
    try:
        data = yaml.safe_load(io.StringIO(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a mapping of fields (name, task, ...)")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        more = f" (and {len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{path}: field {field}: {msg}{more}") from None
    scenario.path = path.resolve()
    return scenario


def scenario_schema() -> dict[str, Any]:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **Scenario.model_json_schema()}
    schema["title"] = "cua scenario"
    schema.get("properties", {}).pop("path", None)
    return schema


def parse_vars(pairs: list[str] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--var takes NAME=VALUE, got {pair!r}")
        values[name.strip()] = value
    return values


# --- Checks -------------------------------------------------------------------------------------


class ScenarioCheck:
    """A ``CheckSpec`` made executable (``runner.Check``)."""

    def __init__(self, spec: CheckSpec, folder: Path) -> None:
        self.spec = spec
        self.folder = folder
        self.name = spec.label()

    async def evaluate(self, env: Any, result: Any, trace: Any) -> dict[str, Any]:
        spec = self.spec
        outcome: dict[str, Any] = {"name": self.name, "kind": spec.kind}
        ok, detail = await getattr(self, f"_{spec.kind}")(env, result, trace, outcome)
        outcome.update(ok=ok, detail=detail)
        return outcome

    async def _url_equals(self, env, result, trace, out):
        url = await env.current_url()
        return url == self.spec.url_equals, f"URL is {url}"

    async def _url_matches(self, env, result, trace, out):
        url = await env.current_url() or ""
        return re.search(self.spec.url_matches, url) is not None, f"URL is {url}"

    async def _text_visible(self, env, result, trace, out):
        page = _page_of(env)
        locator = page.get_by_text(self.spec.text_visible).first
        visible = await locator.count() > 0 and await locator.is_visible()
        return visible, "visible" if visible else f"text {self.spec.text_visible!r} is not visible"

    async def _selector(self, env, result, trace, out):
        spec = self.spec.selector
        page = _page_of(env)
        locator = page.locator(spec.selector).first
        if await locator.count() == 0:
            return False, f"no element matches {spec.selector}"
        if spec.state == "visible" and not await locator.is_visible():
            return False, f"{spec.selector} exists but is not visible"
        if spec.has_text is not None:
            text = (await locator.inner_text()).strip()
            if spec.has_text not in text:
                return False, f"{spec.selector} has text {text[:80]!r}"
        return True, f"{spec.selector} {'is visible' if spec.state == 'visible' else 'exists'}"

    async def _screenshot(self, env, result, trace, out):
        from PIL import Image, ImageChops, ImageStat

        spec = self.spec.screenshot
        r = spec.region
        png = await env.screenshot()
        with Image.open(io.BytesIO(png)) as shot:
            actual = shot.convert("RGB").crop((r.x, r.y, r.x + r.width, r.y + r.height))
        buf = io.BytesIO()
        actual.save(buf, format="PNG")
        out["actual_screen"] = trace.save_screenshot(buf.getvalue()) if trace else None
        baseline_path = self.folder / spec.baseline
        if not baseline_path.exists():
            return False, f"baseline {spec.baseline} does not exist (the actual region was saved in the run)"
        with Image.open(baseline_path) as base:
            expected = base.convert("RGB")
            out["expected_screen"] = trace.save_screenshot(baseline_path.read_bytes()) if trace else None
        if expected.size != actual.size:
            return False, f"baseline is {expected.size}, region is {actual.size}"
        diff = ImageChops.difference(expected, actual)
        mean = sum(ImageStat.Stat(diff).mean) / 3 / 255
        return mean <= spec.tolerance, f"difference {mean:.4f} (tolerance {spec.tolerance})"

    async def _answer_contains(self, env, result, trace, out):
        ok = self.spec.answer_contains.lower() in (result.final_text or "").lower()
        return ok, f"answer: {(result.final_text or '')[:120]!r}"

    async def _answer_matches(self, env, result, trace, out):
        ok = re.search(self.spec.answer_matches, result.final_text or "") is not None
        return ok, f"answer: {(result.final_text or '')[:120]!r}"


def _page_of(env: Any) -> Any:
    page = getattr(env, "page", None)
    if page is None:
        raise ConfigError("this check needs a browser environment (it reads the page)")
    return page


def build_checks(scenario: Scenario) -> list[ScenarioCheck]:
    return [ScenarioCheck(spec, scenario.folder) for spec in scenario.checks]


def script_to_turns(script: list[ScriptTurn]) -> list[list[dict[str, Any]]]:
    """The scenario's script as stand-in turns (lists of output items)."""
    turns: list[list[dict[str, Any]]] = []
    for turn in script:
        items: list[dict[str, Any]] = []
        if turn.reasoning:
            items.append({"type": "reasoning", "summary": [{"type": "summary_text", "text": turn.reasoning}]})
        if turn.actions is not None:
            call: dict[str, Any] = {"type": "computer_call", "actions": turn.actions}
            if turn.safety_checks:
                call["pending_safety_checks"] = turn.safety_checks
            items.append(call)
        elif turn.function is not None:
            import json

            items.append({
                "type": "function_call",
                "name": turn.function["name"],
                "arguments": json.dumps(turn.function.get("arguments", {})),
            })
        else:
            items.append({
                "type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": turn.message}],
            })
        turns.append(items)
    return turns
