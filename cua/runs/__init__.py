"""The run folder: what a run leaves on disk, written crash-safe and read back.

The loop writes it through ``StepRecorder`` (``writer``), every reader goes through ``read_run``
(``reader``), a recording is a portable copy of it (``recording``), and the anchors of coordinate
actions (``anchors``) are what a replay finds its targets by. Nothing here imports the loop, the
runner, replay or reports: they all build on this.

A run folder is safe against a crash of the process at any moment (SIGKILL included):
``run.json`` is replaced atomically, ``steps.jsonl`` is appended and flushed once per step, and
screenshots are written before the step that names them. (No fsync per step: it would cost
milliseconds on every step to guard against a power cut, which is not what traces are for;
``close()`` syncs once at the end.) A folder left by a killed run therefore holds every completed
step, and every reader (report, replay) accepts a ``run.json`` still marked ``running``.

Layout::

    run.json        settings (no secrets), status, usage, timings, checks, result
    steps.jsonl     one JSON object per model turn (below)
    screens/        PNG screenshots, stored once each, named by content hash
    report.html     written at the end of every run and replay

A recording (``cua run --record``, ``cua replay --update``) is a copy of a run folder with nothing
of the machine that made it (see ``make_portable``): the scenario's served app is
``{{served_url}}``, paths are relative to the recording, and there is no report.

run.json fields: ``schema``, ``kind`` ("run" | "replay"), ``status`` ("running" until the end, then
completed | failed | max_steps | timeout | safety_denied | error | interrupted | diverged),
``exit_code``, ``task``, ``settings`` (RunSettings, no secrets; its
``provider``, when there, and ``model`` say what drove the run), ``started_at``, ``finished_at``,
``duration_s``, ``steps``, ``usage`` {input_tokens, output_tokens, reasoning_tokens, total_tokens},
``cost`` (USD or null), ``final_text``, ``final_url``, ``error``, ``reason``, ``checks``
[{name, ok, detail, expected_screen?, actual_screen?}], ``healed``, ``diverged_at``,
``initial_screen``, ``final_screen``, ``made_by`` ("demonstration": ``cua record`` wrote it from a
person's input; "mcp": ``cua mcp`` wrote it from an MCP client's computer session, one action a
step; such steps have no model fields), ``display`` (the size the model saw: for a screen of another
shape than ``settings.display``, the part of it that shape fills); a replay adds ``source_run``; a
scenario run ``scenario``.

A steps.jsonl line (one model turn; replays write the same shape with ``replay`` fields)::

    step            1-based turn number
    elapsed_s       seconds since the run started, when the turn began
    model_ms        time the model took to answer
    response_id     opaque id of the response
    usage           {input_tokens, output_tokens, reasoning_tokens, total_tokens}
    screen_before   screenshot the model saw when it decided (run-relative path)
    items           the response's output items as received (encrypted reasoning elided)
    reasoning       the reasoning summary text
    text            assistant message text
    safety_checks   [{id, code, message, decision: acknowledged | denied}]
    actions         [{action: {type, x, y, ...as the model sent it}, ms, anchor?: {x, y,
                      element?: {tag, role, name, text, id, testid, selector, box}},
                      healed?: {from: [x, y], to: [x, y], by: "element" | "image"}}]
    functions       [{name, arguments, output, ms}]
    settle_ms       time from the last action to the screenshot answering it
    screen_after    that screenshot
    url             page URL after the actions (browser)
    final           true on the turn that ended the run
    diverged        (replay) {reason, expected_screen, actual_screen}
"""
