"""Scenario files: a task, its settings, its variables, the checks that judge it, and a script.

A scenario is YAML validated by pydantic (``cua schema`` prints the JSON Schema). ``{{name}}``
placeholders in the task, instructions, start URL, script and checks take the values of
``variables``: from ``--var k=v``, else the variable's environment variable, else its default.
Secret variables are masked as ``{{name}}`` in every trace, report and log.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Iterator, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .actions import Size, parse_action
from .errors import ConfigError, CuaError, validation_problem
from .selector_syntax import check_selector

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

# Bigger scenario files, or YAML whose aliases expand past this many values, are refused: a
# scenario is a page of text, and a "billion laughs" document would eat the memory when walked.
MAX_SCENARIO_BYTES = 1 << 20
MAX_SCENARIO_VALUES = 100_000
# libyaml's scanner is linear and refuses nesting past 1000 levels; PyYAML's own is quadratic in
# the nesting depth (a file of 5000 "[" takes seconds), so it is only the fallback.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _has_placeholder(value: Any) -> bool:
    """Fields with ``{{name}}`` are checked once the variables are filled in (``render``)."""
    return bool(_PLACEHOLDER.search(json.dumps(value, default=str)))


def _check_regex(value: str | None) -> str | None:
    if value is not None and not _has_placeholder(value):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a valid regular expression ({exc})") from None
    return value


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


class StoredPrompt(_Strict):
    id: str
    version: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)


class McpServerSpec(_Strict):
    """A remote MCP server, as the Responses API's mcp tool names its fields."""

    server_label: str
    server_url: str
    allowed_tools: list[str] | None = None
    require_approval: Literal["always", "never"] | dict[str, Any] | None = None
    server_description: str | None = None


class ModelSpec(_Strict):
    name: str | None = None
    provider: Literal["openai", "anthropic", "google"] | None = Field(
        None, description="wire format (default: from the name); with model scripted, the one the script plays over")
    tool: Literal["auto", "preview", "computer", "computer_toolset_20260801", "computer_20251124",
                  "computer_20250124"] | None = None
    reasoning: str | None = Field(None, description="reasoning summary: auto, concise, detailed")
    effort: str | None = None
    stateless: bool | None = None
    # The Responses API's own parameters (OpenAI models).
    verbosity: Literal["low", "medium", "high"] | None = None
    max_output_tokens: int | None = Field(None, ge=16)
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    prompt: StoredPrompt | None = None
    mcp_servers: list[McpServerSpec] | None = None
    mcp_approval: Literal["auto", "ask", "deny"] | None = None



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

    @field_validator("selector")
    @classmethod
    def _syntax(cls, value: str) -> str:
        if not _has_placeholder(value):
            check_selector(value)
        return value


class CheckSpec(_Strict):
    """Exactly one of the fields. Browser-only: url_*, text_visible, text_absent, selector.
    ``not`` holds another check and passes when that one fails."""

    # `not` is a Python keyword: the field is not_, written and read as `not`.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    name: str | None = None
    url_equals: str | None = None
    url_matches: str | None = None
    text_visible: str | None = None
    text_absent: str | None = Field(None, description="passes when no visible element shows this text")
    selector: SelectorCheck | None = None
    screenshot: ScreenshotCheck | None = None
    answer_contains: str | None = None
    answer_matches: str | None = None
    ai_check: str | None = Field(None, description="a claim a model judges from the final screen and answer")
    not_: "CheckSpec | None" = Field(None, alias="not", description="passes when the check inside fails")

    _regexes = field_validator("url_matches", "answer_matches")(_check_regex)

    @model_validator(mode="after")
    def _one_kind(self) -> "CheckSpec":
        given = [k for k in self.kinds() if getattr(self, k) is not None]
        if len(given) != 1:
            names = [k.rstrip("_") for k in self.kinds()]
            raise ValueError(f"a check needs exactly one of {', '.join(names)}; got "
                             f"{[k.rstrip('_') for k in given] or 'none'}")
        return self

    @staticmethod
    def kinds() -> tuple[str, ...]:
        return ("url_equals", "url_matches", "text_visible", "text_absent", "selector", "screenshot",
                "answer_contains", "answer_matches", "ai_check", "not_")

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
        if kind == "not_":
            return f"not ({self.not_.label()})"
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
        if self.function is not None:
            name, arguments = self.function.get("name"), self.function.get("arguments", {})
            if not isinstance(name, str) or not name:
                raise ValueError("a script function needs a name, e.g. {name: goto, arguments: {url: ...}}")
            if not isinstance(arguments, dict):
                raise ValueError(f"the arguments of script function {name!r} must be a mapping of names to values")
        for n, raw in enumerate(self.actions or []):
            if not _has_placeholder(raw):
                try:
                    parse_action(raw, where=f"action {n + 1}")
                except CuaError as exc:
                    raise ValueError(str(exc)) from None
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

    @field_validator("display")
    @classmethod
    def _display(cls, value: str) -> str:
        return value if _has_placeholder(value) else str(Size.parse(value))

    @model_validator(mode="after")
    def _regions_fit(self) -> "Scenario":
        if _has_placeholder(self.display):
            return self
        size = Size.parse(self.display)
        for n, check in enumerate(self.checks):
            r = check.screenshot.region if check.screenshot else None
            if r and (r.x + r.width > size.width or r.y + r.height > size.height):
                raise ValueError(f"checks.{n}.screenshot.region {r.width}x{r.height}+{r.x}+{r.y} "
                                 f"does not fit the {size} display")
        return self

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
        try:
            rendered = Scenario.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{self._where()}: with its variables filled in, {validation_problem(exc)}") from None
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
            "provider": model.provider,
            "tool": model.tool,
            "reasoning_summary": model.reasoning,
            "reasoning_effort": model.effort,
            "stateless": model.stateless,
            "verbosity": model.verbosity,
            "max_output_tokens": model.max_output_tokens,
            "parallel_tool_calls": model.parallel_tool_calls,
            "metadata": model.metadata,
            "service_tier": model.service_tier,
            "prompt_id": model.prompt.id if model.prompt else None,
            "prompt_version": model.prompt.version if model.prompt else None,
            "prompt_variables": model.prompt.variables if model.prompt else None,
            "mcp_servers": [m.model_dump(exclude_none=True) for m in model.mcp_servers] if model.mcp_servers else None,
            "mcp_approval": model.mcp_approval,
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
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a scenario must be a mapping of fields (name, task, ...)")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {validation_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: the scenario is nested too deeply") from None
    scenario.path = path.resolve()
    _check_baselines(scenario, path)
    return scenario


def _read_yaml(path: Path) -> Any:
    try:
        with path.open("rb") as fh:  # read at most one byte past the cap: /dev/zero is a file too
            raw = fh.read(MAX_SCENARIO_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such scenario file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scenario file ({exc.strerror or exc})") from None
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ConfigError(f"{path}: the scenario file is larger than {MAX_SCENARIO_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the scenario file is not UTF-8 text (byte {exc.start})") from None
    loader = _SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count_values(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML is nested too deeply") from None
    finally:
        loader.dispose()


def _count_values(root: yaml.Node, path: Path) -> None:
    """Refuse a document whose aliases expand it past ``MAX_SCENARIO_VALUES`` values."""
    sizes: dict[int, int] = {}  # node id → its size with every alias expanded
    pending: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in pending:
            raise ConfigError(f"{path}: line {node.start_mark.line + 1}: a YAML alias refers to itself")
        pending.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        pending.discard(key)
        sizes[key] = total
        if total > MAX_SCENARIO_VALUES:
            raise ConfigError(f"{path}: the YAML expands to more than {MAX_SCENARIO_VALUES} values "
                              "(aliases repeated inside aliases?); write the scenario out plainly")
        return total

    size(root)


def _check_baselines(scenario: Scenario, path: Path) -> None:
    """Each screenshot check's baseline must be an image of its region's size."""
    from PIL import Image

    for n, check in enumerate(scenario.checks):
        shot = check.screenshot
        if shot is None or _has_placeholder(shot.baseline):
            continue
        field = f"{path}: field checks.{n}.screenshot.baseline"
        baseline = scenario.folder / shot.baseline
        if not baseline.is_file():
            raise ConfigError(f"{field}: {baseline} does not exist (crop one from a run's screenshot, "
                              f"{shot.region.width}x{shot.region.height} pixels)")
        try:
            with Image.open(baseline) as image:
                image.verify()
                found = image.size
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            raise ConfigError(f"{field}: {baseline} is not an image Pillow can read") from None
        if found != (shot.region.width, shot.region.height):
            raise ConfigError(f"{field}: {baseline} is {found[0]}x{found[1]}, the region is "
                              f"{shot.region.width}x{shot.region.height}")


def scenario_schema() -> dict[str, Any]:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **Scenario.model_json_schema()}
    schema["title"] = "cua scenario"
    schema.get("properties", {}).pop("path", None)
    return schema


def parse_vars(pairs: list[str] | None, *, what: str = "--var") -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"{what} takes NAME=VALUE, got {pair!r}")
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

    async def _text_absent(self, env, result, trace, out):
        page = _page_of(env)
        matches = page.get_by_text(self.spec.text_absent)
        for n in range(await matches.count()):
            if await matches.nth(n).is_visible():
                return False, f"text {self.spec.text_absent!r} is visible"
        return True, "not visible"

    async def _ai_check(self, env, result, trace, out):
        from .judge import ai_verdict

        passed, reason, judged = await ai_verdict(self.spec.ai_check, env, result)
        if passed is None:
            out["skipped"] = True
            return True, reason
        if not judged:
            out["inconclusive"] = True
        out["judge"] = "model"
        return passed, reason

    async def _not_(self, env, result, trace, out):
        inner = ScenarioCheck(self.spec.not_, self.folder)
        got = await inner.evaluate(env, result, trace)
        if got.get("skipped"):
            out["skipped"] = True
            return True, got["detail"]
        if got.get("inconclusive"):  # not judged is no failure to invert
            out["inconclusive"] = True
            return False, f"could not be judged: {got['detail']}"
        return not got["ok"], f"{'failed' if not got['ok'] else 'passed'}: {got['detail']}"

    async def _selector(self, env, result, trace, out):
        from playwright.async_api import Error as PlaywrightError

        try:
            return await self._match_selector(_page_of(env))
        except PlaywrightError as exc:  # what the load-time syntax check could not know
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"selector {self.spec.selector.selector!r}: {first_line}") from None

    async def _match_selector(self, page: Any) -> tuple[bool, str]:
        spec = self.spec.selector
        locator = page.locator(spec.selector).first
        if await locator.count() == 0:
            return False, f"no element matches {spec.selector}"
        if spec.state == "visible" and not await locator.is_visible():
            return False, f"{spec.selector} exists but is not visible"
        if spec.has_text is not None:
            # Runs of white space (line breaks between an element's children) count as one space.
            text = " ".join((await locator.inner_text()).split())
            if " ".join(spec.has_text.split()) not in text:
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
            out["inconclusive"] = True
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
