"""``cua``: argument parsing and printing only. Every command is a library call.

Exit codes: 0 completed · 1 failed, max_steps, timeout, refused, diverged · 2 usage or
configuration error · 3 model API error or unusable model output · 4 environment error ·
5 safety_denied · 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from typing import Any, Sequence

from .errors import ConfigError, CuaError
from .options import retry_count

USAGE_EXIT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit code 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_EXIT, f"cua: {message} (see '{self.prog} --help')\n")


def _display(value: str) -> str:
    from .actions import Size

    try:
        return str(Size.parse(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _positive_float(value: str) -> float:
    try:
        n = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cua", description="Computer-use automation runner: OpenAI, Claude and Gemini computer use.")
    parser.add_argument("--version", action="version", version=f"cua {__import__('cua').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a task or a scenario file")
    run.add_argument("scenario", nargs="?", metavar="SCENARIO", help="a scenario YAML file")
    run.add_argument("--task", help="what the model should do")
    run.add_argument("--start-url", help="page to open first (browser)")
    run.add_argument("--env", choices=["browser", "mac", "windows", "ubuntu", "linux"])
    run.add_argument("--model", help="model name, or 'scripted' to play the scenario's script")
    run.add_argument("--provider", choices=["openai", "anthropic", "google"],
                     help="wire format (default: from the model name: claude-* anthropic, gemini-* "
                          "google, else openai); with --model scripted, the one the script plays over")
    run.add_argument("--tool", choices=["auto", "preview", "computer", "computer_toolset_20260801",
                                        "computer_20251124", "computer_20250124"],
                     help="tool (default: from the model name): OpenAI's preview|computer, or "
                          "Claude's toolset or one of its beta tools")
    run.add_argument("--base-url", help="the provider's API base URL (default: its SDK's variable "
                                        "or the vendor's endpoint)")
    run.add_argument("--thinking-budget", type=_positive_int, metavar="TOKENS",
                     help="Claude: think up to this many tokens a turn (at least 1024, below max_tokens)")
    run.add_argument("--display", type=_display, help="WIDTHxHEIGHT the model sees (default 1024x768)")
    run.add_argument("--max-steps", type=_positive_int, help="stop after this many model turns (default 50)")
    run.add_argument("--timeout", type=_positive_float, help="stop after this many seconds")
    run.add_argument("--safety", choices=["auto", "ask", "deny"],
                     help="pending safety checks: acknowledge, ask y/n on a terminal (default; denied "
                          "without one), or stop")
    run.add_argument("--safety-allow", action="append", metavar="CODE",
                     help="acknowledge checks of this code (e.g. irrelevant_domain) without asking (repeatable)")
    stream = run.add_mutually_exclusive_group()
    stream.add_argument("--stream", dest="stream", action="store_true", default=None, help="stream responses (SSE; default)")
    stream.add_argument("--no-stream", dest="stream", action="store_false", help="plain JSON responses")
    run.add_argument("--stateless", action="store_true", default=None, help="store:false; replay history every turn")
    run.add_argument("--allow-domain", action="append", metavar="D", help="only these domains (repeatable)")
    run.add_argument("--block-domain", action="append", metavar="D", help="never these domains (repeatable)")
    run.add_argument("--allow-scheme", action="append", metavar="SCHEME",
                     help="let goto open this scheme too, e.g. file or data (repeatable)")
    run.add_argument("--cdp-url", help="attach to a browser's CDP endpoint")
    run.add_argument("--ws-endpoint", help="connect to a Playwright browser server")
    run.add_argument("--headed", action="store_true", default=None, help="show the browser window")
    run.add_argument("--instructions", help="system instructions for the model")
    run.add_argument("--nav-tools", dest="navigation_tools", action="store_true", default=None,
                     help="offer goto/back/forward functions to the model (browser)")
    run.add_argument("--x-display", help="attach to this X display (ubuntu), e.g. :5")
    run.add_argument("--launch", help="program to start on the X display (ubuntu)")
    run.add_argument("--vm-url", help="computer-server URL of a VM (mac, windows, linux)")
    run.add_argument("--vm-name", help="VM container name (cloud auth, X-Container-Name)")
    run.add_argument("--vm-api-key", help="VM API key (or $CUA_VM_API_KEY)")
    run.add_argument("--wheel-step", type=_positive_int, metavar="PX",
                     help="screen pixels one wheel notch scrolls (desktops; default 120 on X)")
    run.add_argument("--var", action="append", metavar="K=V", help="scenario variable (repeatable)")
    run.add_argument("--out", help="folder for run folders (default ./runs)")
    run.add_argument("--playwright-trace", dest="playwright_trace", action="store_true", default=None,
                     help="also write playwright-trace.zip (one group per step) in the run folder")
    run.add_argument("--record", action="store_true",
                     help="(scenario) save a completed run as the scenario's recording")
    run.add_argument("--json", action="store_true", help="print one JSON object with the result on stdout")
    openai = run.add_argument_group("Responses API parameters (OpenAI models)")
    openai.add_argument("--reasoning-effort", help="reasoning.effort: none, minimal, low, medium, high, xhigh")
    openai.add_argument("--reasoning-summary", help="reasoning.summary: auto (default), concise, detailed")
    openai.add_argument("--verbosity", choices=["low", "medium", "high"], help="text.verbosity")
    openai.add_argument("--max-output-tokens", type=_positive_int, help="max_output_tokens of each turn")
    openai.add_argument("--parallel-tool-calls", action=argparse.BooleanOptionalAction, default=None,
                        help="parallel_tool_calls")
    openai.add_argument("--metadata", action="append", default=[], metavar="K=V", help="metadata pair (repeatable)")
    openai.add_argument("--service-tier", help="service_tier: auto, default, flex, priority, …")
    openai.add_argument("--prompt-id", help="a stored prompt's id (prompt.id)")
    openai.add_argument("--prompt-version", help="its version")
    openai.add_argument("--prompt-var", action="append", default=[], metavar="K=V",
                        help="a variable of the stored prompt (repeatable)")
    openai.add_argument("--mcp-server", action="append", default=[], metavar="LABEL=URL",
                        help="a remote MCP server the service may call for the model (repeatable)")
    openai.add_argument("--mcp-approval", choices=["ask", "auto", "deny"],
                        help="its tool calls that need approval: ask on a terminal (default; refused "
                             "without one), approve all, or refuse all")
    run.add_argument("--no-ai-checks", dest="ai_checks", action="store_false",
                     help="skip ai_check checks (shown as skipped): no model is asked to judge")
    run.add_argument("--retries", type=retry_count, default=0, metavar="N",
                     help="run a failed run again up to N times; a pass after a failure is reported as flaky")

    replay = sub.add_parser("replay", help="replay a recorded run with no model, healing drift")
    replay.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, or a scenario file (its recording)")
    replay.add_argument("--start-url", help="open this URL instead of the recorded one")
    replay.add_argument("--heal", choices=["none", "model"], default="none",
                        help="when a target cannot be found: stop (none) or hand over to the model")
    replay.add_argument("--update", action="store_true", help="save a passing healed replay as the recording")
    replay.add_argument("--base-url", help="the provider's API base URL (for --heal model and ai_check)")
    replay.add_argument("--model", help="model for --heal model (default: the recorded one)")
    replay.add_argument("--provider", choices=["openai", "anthropic", "google"],
                        help="provider for --heal model (default: from the model name)")
    replay.add_argument("--vm-url", help="replay on this VM instead of the recorded one")
    replay.add_argument("--x-display", help="replay on this X display instead of the recorded one")
    replay.add_argument("--wheel-step", type=_positive_int, metavar="PX",
                        help="screen pixels one wheel notch scrolls here (default: the recorded one)")
    replay.add_argument("--var", action="append", metavar="K=V", help="scenario variable (repeatable)")
    replay.add_argument("--out", help="folder for run folders (default ./runs)")
    replay.add_argument("--json", action="store_true", help="print one JSON object with the result on stdout")
    replay.add_argument("--no-ai-checks", dest="ai_checks", action="store_false",
                        help="skip ai_check checks (shown as skipped): the replay then calls no model at all")
    replay.add_argument("--retries", type=retry_count, default=0, metavar="N",
                        help="replay a failed or diverged replay again up to N times (flaky when one then passes)")

    record = sub.add_parser("record", help="record what you do in a browser or on a desktop as a scenario")
    record.add_argument("scenario", metavar="SCENARIO", help="the scenario file to write (e.g. login.cua.yaml)")
    record.add_argument("--start-url", help="(browser) the page to start from")
    record.add_argument("--task", help="what the flow does, for a model (default: written from the actions)")
    record.add_argument("--env", choices=["browser", "ubuntu"], default="browser",
                        help="a headed Chromium (default), or an X desktop")
    record.add_argument("--display", type=_display, default="1024x768", help="viewport or screen size WxH")
    record.add_argument("--x-display", help="(ubuntu) record this X display, e.g. :1")
    record.add_argument("--launch", help="(ubuntu) start this program on the recorded display")
    record.add_argument("--name", help="the scenario's name (default: the file name)")
    record.add_argument("--secret-field", action="append", default=[], metavar="SELECTOR",
                        help="(browser) text typed into fields matching SELECTOR is a secret (repeatable); "
                             "password fields always are")
    record.add_argument("--no-url-check", action="store_true", help="do not check the final URL")
    record.add_argument("--out", default="runs", help="folder for the recording's run folder (default ./runs)")
    record.add_argument("--json", action="store_true",
                        help="print one JSON object (scenario, recording, steps, actions) on stdout")

    report = sub.add_parser("report", help="write the HTML report of run folders")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    report.add_argument("--gif", action="store_true", help="also write an animated summary.gif")
    report.add_argument("--index", metavar="FILE", help="write an index page of all the runs")
    report.add_argument("--junit", metavar="FILE", help="write JUnit XML of all the runs")

    sub.add_parser("schema", help="print the JSON Schema of scenario files")

    demo = sub.add_parser("demo", help="run the bundled scenarios on the demo app, offline")
    demo.add_argument("--out", default="runs/demo", help="folder for the demo's runs (default runs/demo)")
    remote = demo.add_mutually_exclusive_group()
    remote.add_argument("--ws-endpoint", help="run in the Playwright browser server at this ws:// URL")
    remote.add_argument("--cdp-url", help="run in the Chromium at this CDP URL")

    mcp = sub.add_parser("mcp", help="serve cua's runs, replays and a computer to MCP clients (stdio or HTTP)")
    mcp.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1",
                     help="address to listen on with --http (default 127.0.0.1; any other needs CUA_MCP_TOKEN)")
    mcp.add_argument("--port", type=int, default=8765, help="port for --http (default 8765; 0 picks a free one)")
    mcp.add_argument("--out", default="runs", help="folder for the runs and sessions of its tools (default runs)")
    return parser


SETTING_FLAGS = (
    "task", "start_url", "env", "model", "provider", "tool", "display", "max_steps", "timeout", "safety",
    "stream", "stateless", "cdp_url", "ws_endpoint", "headed", "instructions",
    "navigation_tools", "playwright_trace", "x_display", "launch", "vm_url", "vm_name", "out",
    "wheel_step", "thinking_budget", "reasoning_effort", "reasoning_summary", "verbosity",
    "max_output_tokens", "parallel_tool_calls", "service_tier", "prompt_id", "prompt_version", "mcp_approval",
)
PAIR_FLAGS = {"metadata": "metadata", "prompt_var": "prompt_variables"}  # K=V flags, into mappings


LIST_FLAGS = {"allow_domain": "allow_domains", "block_domain": "block_domains", "safety_allow": "safety_allow",
              "allow_scheme": "allow_schemes"}


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The RunSettings fields the user set on the command line."""
    data = {name: getattr(args, name) for name in SETTING_FLAGS if getattr(args, name, None) is not None}
    data.update({field: getattr(args, flag) for flag, field in LIST_FLAGS.items() if getattr(args, flag, None)})
    for flag, field in PAIR_FLAGS.items():
        if getattr(args, flag, None):
            from .scenario import parse_vars

            data[field] = parse_vars(getattr(args, flag), what=f"--{flag.replace('_', '-')}")
    if getattr(args, "mcp_server", None):
        from .scenario import parse_vars

        servers = parse_vars(args.mcp_server, what="--mcp-server")
        data["mcp_servers"] = [{"server_label": label, "server_url": url} for label, url in servers.items()]
    return data


def settings_from_args(args: argparse.Namespace, base: dict[str, Any] | None = None):
    """Scenario values first, then every flag the user gave on top."""
    from pydantic import ValidationError

    from .config import RunSettings

    try:
        return RunSettings(**{**(base or {}), **given_flags(args)})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"bad setting {field}: {first['msg']}") from None


# --- Progress -----------------------------------------------------------------------------------


def _describe(action: dict[str, Any]) -> str:
    kind = action.get("type", "?")
    if kind in {"click", "double_click", "move"}:
        extra = f",{action['button']}" if action.get("button", "left") != "left" else ""
        return f"{kind}({action.get('x')},{action.get('y')}{extra})"
    if kind == "scroll":
        return f"scroll({action.get('x')},{action.get('y')} by {action.get('scroll_x', 0)},{action.get('scroll_y', 0)})"
    if kind == "type":
        text = action.get("text", "")
        return f"type({text[:30]!r}{'…' if len(text) > 30 else ''})"
    if kind == "keypress":
        return "keypress(" + "+".join(action.get("keys", [])) + ")"
    if kind == "drag":
        path = action.get("path", [])
        if path:
            return f"drag({path[0]['x']},{path[0]['y']}→{path[-1]['x']},{path[-1]['y']})"
    return kind


class Progress:
    """The live step log on stderr; on a TTY a status line shows what is being waited for."""

    def __init__(self, stream=sys.stderr, redact=None) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.redact = redact or (lambda s: s)
        self.started = time.monotonic()
        self._status = ""

    def _write(self, line: str) -> None:
        if self.tty and self._status:
            self.stream.write("\r\033[K")
        self.stream.write(self.redact(line) + "\n")
        self.stream.flush()
        self._status = ""

    def status(self, text: str) -> None:
        if self.tty:
            self._status = text
            self.stream.write("\r\033[K" + self.redact(text)[: 120])
            self.stream.flush()

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        if kind == "model.waiting":
            self.status(f"… waiting for the model ({time.monotonic() - self.started:.1f}s)")
        elif kind == "model.thinking":
            self.status("… thinking: " + str(event.get("delta") or "").strip())

    def env_event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "blocked":
            self._write(f"  blocked request to {data.get('url')}")
        elif kind == "tab":
            self._write(f"  following new tab {data.get('url', '')}")

    def step(self, step: dict[str, Any]) -> None:
        elapsed = time.monotonic() - self.started
        # A call that could not be understood is recorded with its error, not an action.
        actions = " ".join(_describe(a["action"]) if "action" in a else "(bad call)" for a in step.get("actions") or [])
        funcs = " ".join(f"{f['name']}()" for f in step.get("functions") or [])
        tokens = (step.get("usage") or {}).get("total_tokens", 0)
        head = f"step {step['step']:>3}  {elapsed:6.1f}s  {tokens:>6} tok  "
        body = " ".join(p for p in (actions, funcs) if p) or ("done" if step.get("final") else "")
        self._write(head + body)
        if step.get("reasoning"):
            self._write("            ↳ " + step["reasoning"].replace("\n", " ")[:160])
        if step.get("final") and step.get("text"):
            self._write("            « " + step["text"].replace("\n", " ")[:300])
        for approval in step.get("mcp_approvals") or []:
            self._write(f"            ⚙ MCP {approval['server']}.{approval['name']}: {approval['how']}")
        for check in step.get("safety_checks") or []:
            self._write(f"            ⚠ safety {check['code']}: {check['decision']}")


# --- Commands -----------------------------------------------------------------------------------


def _print_result(result, as_json: bool) -> None:
    if as_json:
        data = result.as_dict()
        usage = data["usage"]
        data["usage"] = {
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
            "reasoning_tokens": usage["reasoning_tokens"],
        }
        print(json.dumps(data, ensure_ascii=False))
        return
    line = f"{result.status}: {result.steps} steps, {result.usage.total_tokens} tokens"
    if result.flaky:
        line += f"; flaky: passed on attempt {result.attempts}"
    elif result.attempts > 1:
        line += f"; failed all {result.attempts} attempts"
    if result.cost:
        line += f", ${result.cost:.4f}"
    print(line)
    if result.final_text:
        print(result.final_text)
    if result.reason:
        print(f"reason: {result.reason}")
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
    for check in result.checks:
        print(f"  {'✓' if check['ok'] else '✗'} {check['name']}: {check.get('detail', '')}")
    for earlier in result.earlier_attempts:
        print(f"  attempt {earlier['attempt']}: {earlier['status']} ({earlier['why']}), {earlier['run_dir']}")
    if result.run_dir:
        print(f"run folder: {result.run_dir}")
        report = os.path.join(result.run_dir, "report.html")
        if os.path.exists(report):
            print(f"report: {report}")


async def _cmd_run(args: argparse.Namespace) -> int:
    from .attempts import with_retries
    from .runner import run_scenario, run_task
    from .scenario import parse_vars

    progress = Progress()
    hooks = dict(
        vm_api_key=args.vm_api_key or os.environ.get("CUA_VM_API_KEY"),
        on_step=progress.step,
        on_event=progress.event,
        on_env_event=progress.env_event,
    )

    def notice(text: str) -> None:
        print(f"cua: {text}", file=sys.stderr)

    if args.scenario:
        flags, variables = given_flags(args), parse_vars(args.var)

        def attempt(n: int):
            return run_scenario(args.scenario, flags=flags, variables=variables, base_url=args.base_url,
                                notice=notice, record=args.record, ai_checks=args.ai_checks, **hooks)
    else:
        if args.var or args.record:
            raise ConfigError("--var and --record go with a scenario file")
        if args.model == "scripted":
            raise ConfigError("--model scripted plays a scenario's script: give a scenario file "
                              "(e.g. cua run scenarios/login.cua.yaml --model scripted)")
        settings = settings_from_args(args)
        if not settings.task:
            raise ConfigError("nothing to do: give --task TEXT or a scenario file")

        def attempt(n: int):
            return run_task(settings, base_url=args.base_url, ai_checks=args.ai_checks, **hooks)
    return await _outcome(with_retries(attempt, args.retries, notice=notice), args.json)


async def _outcome(run, as_json: bool) -> int:
    """Await a run or replay and print its result, also when Ctrl-C or SIGTERM ended it."""
    from .lifecycle import RunCancelled

    try:
        result = await run
    except RunCancelled as exc:
        result = exc.result
    _print_result(result, as_json)
    return result.exit_code


async def _cmd_replay(args: argparse.Namespace) -> int:
    from .scenario import parse_vars
    from .replay.replayer import replay_target

    from .attempts import with_retries

    progress = Progress()
    variables = parse_vars(args.var)

    def attempt(n: int):
        return replay_target(
            args.run_dir, start_url=args.start_url, heal=args.heal, update=args.update,
            out=args.out, variables=variables, base_url=args.base_url, on_step=progress.step,
            ai_checks=args.ai_checks,
            overrides={"model": args.model, "provider": args.provider, "vm_url": args.vm_url,
                       "x_display": args.x_display, "wheel_step": args.wheel_step},
        )
    return await _outcome(with_retries(attempt, args.retries, notice=lambda text: print(f"cua: {text}", file=sys.stderr)),
                          args.json)


async def _cmd_report(args: argparse.Namespace) -> int:
    from .report.html_report import write_report
    from .report.index import write_index

    for run_dir in args.run_dirs:
        print(write_report(run_dir))
        if args.gif:
            from .report.gif import write_gif

            print(write_gif(run_dir))
    if args.index:
        print(write_index(args.run_dirs, args.index))
    if args.junit:
        from .report.junit import write_junit

        print(write_junit(args.run_dirs, args.junit))
    return 0


async def _cmd_schema(args: argparse.Namespace) -> int:
    from .scenario import scenario_schema

    print(json.dumps(scenario_schema(), indent=2))
    return 0


async def _cmd_record(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .record.session import RecordOptions, record

    options = RecordOptions(
        scenario=Path(args.scenario), start_url=args.start_url, task=args.task, env=args.env, display=args.display,
        x_display=args.x_display, launch=args.launch, name=args.name, url_check=not args.no_url_check,
        secret_fields=list(args.secret_field), out=Path(args.out),
    )
    result = await record(options, on_line=lambda line: print(line, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result.as_dict()))
    elif result.exit_code == 0:
        print(f"scenario: {result.scenario}")
        print(f"recording: {result.recording}")
        print(f"report: {result.run_dir / 'report.html'}")
    if result.exit_code != 0:
        print(f"cua: the recording stopped: {result.error}; what was recorded is in {result.run_dir}",
              file=sys.stderr)
    else:
        secrets = "".join(f"\n  {name}: set ${env} when replaying" for name, env in result.secrets.items())
        if result.kept:
            print(f"cua: nothing was recorded; {result.scenario} was left as it was", file=sys.stderr)
        else:
            print(f"cua: recorded {result.actions} actions in {result.steps} steps, {result.checks} checks{secrets}",
                  file=sys.stderr)
    return result.exit_code


async def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    remote = {k: v for k, v in (("ws_endpoint", args.ws_endpoint), ("cdp_url", args.cdp_url)) if v}
    return await run_demo(out=args.out, log=lambda text: print(text, file=sys.stderr), remote=remote)


def _run_async(coro) -> int:
    """Run a command; SIGINT and SIGTERM cancel it cleanly so its run folder is finished."""

    async def main() -> int:
        task = asyncio.ensure_future(coro)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, task.cancel)
            except (NotImplementedError, RuntimeError):
                pass
        try:
            return await task
        except asyncio.CancelledError:
            return 130

    return asyncio.run(main())


def _masked(message: str, args: argparse.Namespace) -> str:
    """An error raised before a run had its own Redactor: mask the keys and URL credentials."""
    from .redact import Redactor, mask_urls_in

    redactor = Redactor().add_environment()
    redactor.add("VM_API_KEY", getattr(args, "vm_api_key", None))
    return mask_urls_in(redactor.text(message))


async def _cmd_mcp(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from .mcp.server import serve
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    token = os.environ.get("CUA_MCP_TOKEN") or None
    if args.http and not token and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"--host {args.host} serves other machines: set CUA_MCP_TOKEN to the bearer token "
                          "clients must send (or keep the default 127.0.0.1)")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a port (0 to 65535)")

    def ready(url: str) -> None:
        print(f"cua mcp: serving {url}" + (" (bearer token required)" if token else ""), file=sys.stderr, flush=True)

    await serve(out=Path(args.out), http=args.http, host=args.host, port=args.port, token=token, on_ready=ready)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return USAGE_EXIT
    handlers = {"run": _cmd_run, "replay": _cmd_replay, "report": _cmd_report,
                "schema": _cmd_schema, "demo": _cmd_demo, "record": _cmd_record, "mcp": _cmd_mcp}
    try:
        return _run_async(handlers[args.command](args))
    except CuaError as exc:
        message = _masked(str(exc), args)
        if getattr(args, "json", False):
            print(json.dumps({
                "status": "error", "steps": 0, "final_text": "", "final_url": None, "run_dir": None,
                "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
                "error": message, "exit_code": exc.exit_code,
            }))
        print(f"cua: {message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cua: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
