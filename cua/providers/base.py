"""What a provider adapter and the loop say to each other: typed turns one way, typed answers back.

The loop (``cua.agent``) knows no vendor's items. A provider adapter owns one wire format — the
request it builds, the conversation state it keeps, streaming, retries, usage — and turns the
model's reply into a ``Turn``: typed actions in model-space pixels, safety checks, function calls,
text. The loop executes the turn and hands back one ``CallAnswer`` per call, in order; the adapter
turns those into the vendor's answer items for the next request.

    provider.start(task, screenshot, screen)
    while True:
        turn = await provider.next_turn(on_event)
        ...                                    # decide safety, execute, take screenshots
        provider.answer(answers)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Union

from ..actions import Action, Size
from ..environments.base import ActionOutput

ProviderName = Literal["openai", "anthropic", "google"]
PROVIDERS: tuple[str, ...] = ("openai", "anthropic", "google")

EventHandler = Callable[[dict[str, Any]], None]
# Progress events a provider emits while the model works (all optional, for a progress line):
#   {"type": "model.waiting"}                         the request is out, nothing back yet
#   {"type": "model.thinking", "delta": "…"}          reasoning / thinking text as it streams
#   {"type": "model.text", "delta": "…"}              answer text as it streams
# Anything else a provider passes on is its own wire event (e.g. "response.created"), unchanged.


def provider_for(model: str, provider: str | None = None) -> ProviderName:
    """The wire format of ``model``: ``claude-*`` → anthropic, ``gemini-*`` → google, else openai.
    ``provider`` (``--provider``, for proxy aliases) wins when given."""
    if provider:
        if provider not in PROVIDERS:
            from ..errors import ConfigError

            raise ConfigError(f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})")
        return provider  # type: ignore[return-value]
    name = model.strip().lower().rsplit("/", 1)[-1]  # "anthropic/claude-…" proxy names too
    if name.startswith("claude"):
        return "anthropic"
    if name.startswith("gemini"):
        return "google"
    return "openai"


@dataclass(frozen=True)
class SafetyCheck:
    """A check the model raised on a call; acknowledged only when the run's policy allows it.
    OpenAI: a pending safety check. Gemini: ``safety_decision: require_confirmation``."""

    id: str
    code: str | None = None
    message: str | None = None


@dataclass
class ComputerCall:
    """One call of the computer tool: the typed actions it asks for, run in order.

    ``screenshot``: whether its answer carries a screenshot taken after its actions (OpenAI's
    always does; Claude's batch is answered with one screenshot on the last call of the turn).
    ``problem``: the call could not be understood (unknown action, a bad field): nothing of it runs;
    a provider that ``answers_errors`` tells the model, the others end the run with it.
    """

    id: str
    actions: list[Action]
    safety_checks: list[SafetyCheck] = field(default_factory=list)
    screenshot: bool = True
    problem: str | None = None
    name: str = "computer"  # the vendor's name for what was called (Claude's member, Gemini's function)


@dataclass
class FunctionCall:
    """A call of one of the user's Python functions (``FunctionRegistry``)."""

    id: str
    name: str
    arguments: str  # JSON text; a custom tool's free-form input when ``custom``
    custom: bool = False


@dataclass
class ApprovalRequest:
    """A remote MCP server's tool the service will call once approved (OpenAI's
    ``mcp_approval_request``); answered with the approval policy's decision."""

    id: str
    server: str
    name: str
    arguments: str  # JSON text, as the model wrote it


Call = Union[ComputerCall, FunctionCall, ApprovalRequest]


@dataclass
class Usage:
    """Tokens of one turn, or of a run when added up. ``input_tokens`` counts every input token,
    cached or not; the cache fields say how many of them were read from or written to a cache."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: "Usage | None") -> None:
        if other is None:
            return
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.total_tokens += other.total_tokens or (other.input_tokens + other.output_tokens)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Turn:
    """One reply of the model, in the loop's terms.

    No calls and no ``failure``: the model is done and ``text`` is its answer. ``refusal``: the
    model declined the task. ``failure``: the reply ended abnormally (cut at the token limit, a
    malformed call, a failed response) — the run fails with it unless there are calls to run.
    ``items`` is the reply as the vendor sent it (large blobs shortened), for the run folder.
    """

    id: str | None
    calls: list[Call] = field(default_factory=list)
    text: str = ""
    reasoning: str = ""
    refusal: str | None = None
    failure: str | None = None
    usage: Usage | None = None
    items: list[dict[str, Any]] = field(default_factory=list)

    def title(self) -> str:
        """A short name of what the turn asks for (``click, type``), for traces and progress."""
        kinds = [a.type for c in self.calls if isinstance(c, ComputerCall) for a in c.actions]
        kinds += [f"{c.name}()" for c in self.calls if isinstance(c, FunctionCall)]
        kinds += [f"approve {c.server}.{c.name}?" for c in self.calls if isinstance(c, ApprovalRequest)]
        return ", ".join(kinds) or "answer"


@dataclass
class CallAnswer:
    """The loop's answer to one call, handed to the provider in the calls' order.

    ``executed`` False: an earlier call of the turn failed and this one was not run. ``error``: the
    call failed (a sentence for the model). ``outputs``: what its actions answered besides the
    screen (zoom images, pointer positions), one per action that answered something."""

    call: Call
    screenshot: bytes | None = None  # PNG at the model's display size, taken after the call
    url: str | None = None
    acknowledged: list[SafetyCheck] = field(default_factory=list)
    error: str | None = None
    executed: bool = True
    outputs: list[ActionOutput] = field(default_factory=list)
    output: str | None = None  # a function's output text
    approved: bool | None = None  # an ApprovalRequest's decision


@dataclass(frozen=True)
class Screen:
    """What a provider needs to know of the screen the model looks at."""

    display: Size  # the model's pixel space: screenshots are this size, actions point in it
    environment: str  # browser | mac | windows | ubuntu | linux
    notch_px: float = 100.0  # model pixels one wheel notch scrolls (for vendors that count notches)


@dataclass(frozen=True)
class FunctionSpec:
    """A user function as every vendor declares it: a name, a sentence, a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    custom: bool = False  # a free-form tool (text in, text out): the Responses API's custom tool


class Provider(ABC):
    """One wire format. Made by ``cua.providers.make_provider``; closed with ``aclose``."""

    name: ClassVar[ProviderName]
    # Whether a failed action is answered to the model (Claude's ``is_error``, Gemini's error
    # response) so the run goes on; OpenAI's computer answer has no text channel, so there a failed
    # action ends the run.
    answers_errors: ClassVar[bool] = False

    @abstractmethod
    def start(self, task: str, screenshot: bytes, screen: Screen, functions: list[FunctionSpec]) -> None:
        """Begin the conversation: the task and the first screenshot are the first request."""

    @abstractmethod
    async def next_turn(self, on_event: EventHandler | None = None) -> Turn:
        """Send what is pending (after retries as the vendor's SDK does them) and parse the reply.
        Raises ``cua.providers.errors.APIError`` (exit 3) when the service cannot be reached or
        refuses; bad model output that cannot be answered raises ``ModelOutputError``."""

    @abstractmethod
    def answer(self, answers: list[CallAnswer]) -> None:
        """The answers to the last turn's calls, in order: sent with the next request."""

    def public(self) -> dict[str, Any]:
        """What run.json records of the provider (no keys)."""
        return {"provider": self.name}

    async def aclose(self) -> None:
        """Release the HTTP client."""
