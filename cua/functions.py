"""Python functions the model may call through ``function_call`` items."""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from pydantic import create_model

from .errors import ConfigError, ModelOutputError

if TYPE_CHECKING:
    from .providers.base import FunctionSpec

# The Responses API refuses a function tool whose name is outside this (openai-python
# FunctionToolParam; the service answers 400), so a bad name is caught when it is registered.
FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


# A custom (free-form) tool's one argument, as providers without custom tools declare it.
CUSTOM_INPUT = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}


@dataclass
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any | Awaitable[Any]]
    custom: bool = False  # takes the model's free-form text (a Responses API custom tool)

    def definition(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": False,
        }


def _schema_for(fn: Callable[..., Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(fn).parameters.items():
        annotation = param.annotation if param.annotation is not inspect.Parameter.empty else Any
        default = param.default if param.default is not inspect.Parameter.empty else ...
        fields[name] = (annotation, default)
    schema = create_model(f"{fn.__name__}_args", **fields).model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


class FunctionRegistry:
    """Registered functions, sync or async, answered with ``function_call_output``."""

    def __init__(self) -> None:
        self._tools: dict[str, FunctionTool] = {}

    def register(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Callable[..., Any]:
        tool_name = name or fn.__name__
        if not FUNCTION_NAME.fullmatch(tool_name):
            raise ConfigError(f"function name {tool_name!r} must be 1-64 letters, digits, _ or - "
                              "(the Responses API refuses other names)")
        self._tools[tool_name] = FunctionTool(
            name=tool_name,
            description=description or inspect.getdoc(fn) or tool_name,
            parameters=parameters or _schema_for(fn),
            fn=fn,
        )
        return fn

    def register_custom(self, fn: Callable[[str], Any], *, name: str | None = None,
                        description: str | None = None) -> Callable[[str], Any]:
        """A custom tool: ``fn`` takes the model's free-form text (no JSON) and returns text. On
        the Responses API it is a ``custom`` tool; Claude and Gemini get a function with one
        string argument, ``input``."""
        self.register(fn, name=name, description=description, parameters=CUSTOM_INPUT)
        self._tools[name or fn.__name__].custom = True
        return fn

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __bool__(self) -> bool:
        return bool(self._tools)

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self._tools.values()]

    def specs(self) -> list["FunctionSpec"]:
        """The functions as every provider declares them (name, description, JSON schema)."""
        from .providers.base import FunctionSpec

        return [FunctionSpec(t.name, t.description, t.parameters, custom=t.custom) for t in self._tools.values()]

    async def call(self, name: str, arguments: str, *, raw: bool = False) -> str:
        """Run a function; its return value (or its error) becomes the output text. ``raw``: the
        arguments are a custom tool's free-form text, given to it as they are."""
        tool = self._tools.get(name)
        if tool is None:
            raise ModelOutputError(f"function_call: unknown function {name!r}")
        if tool.custom:
            return await self._call_custom(tool, arguments, raw)
        try:
            args = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ModelOutputError(f"function_call {name}: arguments are not JSON ({exc.msg})") from None
        if not isinstance(args, dict):
            raise ModelOutputError(f"function_call {name}: arguments must be a JSON object")
        try:
            result = tool.fn(**args)
            if inspect.isawaitable(result):
                result = await result
        except TypeError as exc:
            return json.dumps({"error": f"bad arguments: {exc}"})
        except Exception as exc:  # the model sees the failure and may try something else
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        return result if isinstance(result, str) else json.dumps(result, default=str)

    @staticmethod
    async def _call_custom(tool: FunctionTool, arguments: str, raw: bool) -> str:
        text = arguments
        if not raw:  # a provider without custom tools called it as a function: {"input": "..."}
            try:
                args = json.loads(arguments or "{}")
            except json.JSONDecodeError:
                args = None
            if not isinstance(args, dict) or not isinstance(args.get("input"), str):
                raise ModelOutputError(f"function_call {tool.name}: arguments must be {{\"input\": \"text\"}}")
            text = args["input"]
        try:
            result = tool.fn(text)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:  # the model sees the failure and may try something else
            return f"error: {type(exc).__name__}: {exc}"
        return result if isinstance(result, str) else json.dumps(result, default=str)
