"""``sockcap run``'s output: the exchange (or a scenario) run, then its story printed.

The story is the packets with the programs' socket calls and the kernel's events among
them (:func:`print_story`, which ``sockcap capture --calls`` prints too), then the follow
view, the explanations, the pictures and the summary. The run itself, on loopback, is
:mod:`sockcap.endpoints.loopback`. (Named for what it holds: ``run.py`` was also the name of
that module.)
"""

from __future__ import annotations

import asyncio
import json
import signal

from sockcap.analysis.callfindings import call_findings
from sockcap.analysis.calls import Call
from sockcap.analysis.conversation import Annotated
from sockcap.analysis.story import CLOCK_SLACK_NS, Moment, placed, story, tie_calls, tie_kernel
from sockcap.analysis.summary import summary_line
from sockcap.decode.ftrace import KernelEvent
from sockcap.endpoints.loopback import (
    DEFAULT_MESSAGES,
    RunOptions,
    RunResult,
    run_exchange,
    run_scenario,
)
from sockcap.endpoints.scenarios import SCENARIOS
from sockcap.errors import ExitCode
from sockcap.i18n import _, ngettext
from sockcap.output import Output, color_choice
from sockcap.owner import check_output_path
from sockcap.pipeline import Pipeline
from sockcap.render.calls import (
    call_explain,
    call_line,
    call_record,
    call_ties,
    cause_line,
    failed_call_line,
    finding_line,
    finding_record,
    kernel_ties,
)
from sockcap.render.explain import PacketExplainer, explain_lines
from sockcap.render.kernel import ProbeFilter, kernel_explain, kernel_line, kernel_record
from sockcap.render.packets import PacketView
from sockcap.signals import Stopped, cancel_on_signals


def run_command(*, udp: bool, capture: bool, messages: tuple[str, ...], host: str, port: int,
                out: str | None, force: bool, timeout: float, hex_: bool, json_: bool,
                style: str, no_color: bool, explain: bool = False, follow: bool = False,
                diagram: bool = False, report: bool = False, echo_check: bool = True,
                scenario: str | None = None, kernel: bool = False, color: str = "auto") -> None:
    if capture:
        if out is not None:
            check_output_path(out, force=force)
        capture_in_private_namespace()
    opts = RunOptions(udp=udp, capture=capture, messages=messages or DEFAULT_MESSAGES,
                      host=host, port=port, out=out, force=force, timeout=timeout,
                      kernel=kernel)
    output = Output(color=color_choice(color, no_color))
    pipeline = Pipeline()
    explainer = PacketExplainer() if explain else None
    view = PacketView(pipeline, json=json_, style=style, hex_=hex_, explainer=explainer)
    paths: list[str] = []
    signals: list[int] = []
    try:
        def note(text: str) -> None:
            output.note(_("sockcap: {text}").format(text=text))

        work = (run_scenario(scenario, opts, pipeline, on_path=paths.append, note=note)
                if scenario else run_exchange(opts, pipeline, on_path=paths.append, note=note))
        result = asyncio.run(cancel_on_signals(work, signals))
    except (KeyboardInterrupt, asyncio.CancelledError):
        signals.append(signals[0] if signals else signal.SIGINT)
    if signals:  # stopped, even if some layer finished its work after the cancel
        where = f"; the packets captured so far are in {paths[0]}" if paths else ""
        if signals[0] == signal.SIGTERM:
            raise Stopped("terminated" + where, ExitCode.TERMINATED)
        raise Stopped("interrupted" + where, ExitCode.INTERRUPTED)
    if capture:
        if scenario and not json_:
            output.line(_("scenario {name}: {summary}").format(
                name=scenario, summary=_(SCENARIOS[scenario].summary)), "bold")
        calls, events = _print_capture(result, pipeline, view, output, json_=json_,
                                       follow=follow, explain=explain)
        keep_story(result.path, result.calls, result.events, result.listen_overflows, calls,
                   events, pipeline.first_ts, output)
        _pictures(result, pipeline, output, diagram=diagram and not json_, report=report,
                  force=force, calls=calls, events=events)
    else:
        _print_exchange(result, output)
    output.flush()
    if echo_check and not scenario:  # a scenario is not an echo exchange
        _check_echoes(result)


def _check_echoes(result: RunResult) -> None:
    """Exit 1 with one line when a reply was not an echo of its message."""
    from sockcap.endpoints.client import echo_problems
    from sockcap.errors import EndpointError

    problems = echo_problems(result.exchanges)
    if problems:
        raise EndpointError(problems[0], _("{count} of {total} replies differ; for a server that "
                                           "is not an echo server, add --no-echo-check").format(
            count=len(problems), total=len(result.exchanges)))


def capture_in_private_namespace() -> None:
    """Without any capture permission, run in a private user + network namespace.

    The built-in exchange needs only a loopback of its own: in a namespace this process
    makes (:mod:`sockcap.lab.namespaces`) it may capture there with no sudo and no
    capability, the output is the same and the pcap file belongs to the user. Root,
    ``CAP_NET_RAW`` or a dumpcap this user may run capture on the host's ``lo`` as before.
    Where the kernel forbids user namespaces, one line names the setting and the
    alternatives (exit 2).
    """
    from sockcap.capture.afpacket import can_capture
    from sockcap.capture.dumpcap import dumpcap_may_capture, dumpcap_path

    if can_capture():
        return
    dumpcap = dumpcap_path()
    if dumpcap is not None and dumpcap_may_capture(dumpcap, "lo"):
        return
    from sockcap.lab.namespaces import bring_up, enter_private

    enter_private()
    bring_up("lo")


def _print_exchange(result: RunResult, output: Output) -> None:
    for sent, reply in result.exchanges:
        output.line(_("> {sent}").format(sent=sent))
        output.line(f"< {reply.decode('utf-8', 'replace')}" if reply is not None else "< (no reply)")


def list_scenarios() -> None:
    """``run --scenario list``: each scenario's name and what it shows, in a line."""
    output = Output(color=False)
    width = max(len(name) for name in SCENARIOS)
    for name, scenario in SCENARIOS.items():
        output.line(f"{name:<{width}}  {_(scenario.summary)}")
    output.flush()


def scenario_names() -> list[str]:
    return list(SCENARIOS)


def _print_capture(result: RunResult, pipeline: Pipeline, view: PacketView, output: Output, *,
                   json_: bool, follow: bool, explain: bool,
                   ) -> tuple[list[Call], list[KernelEvent]]:
    """The story, the follow view, the explanations, the summary; the calls and the
    kernel's events as tied to the packets."""
    tied = print_story(result.annotated, result.calls, result.events, pipeline.first_ts, view,
                       output, json_=json_, explain=explain, overflows=result.listen_overflows)
    if follow and not json_:
        from sockcap.render.follow import follow_pairs

        output.line("")
        output.lines(follow_pairs(result.annotated, None))
    if explain and not json_:
        if view.explainer is not None:
            output.lines(view.explainer.summary())
        output.lines(explain_lines(pipeline.tracker.note_counts,
                                   sentences=view.explainer is not None))
    text = summary_line(pipeline.tracker.conversations, result.stats)
    note = output.note if json_ else output.line
    note(ngettext("saved {annotated} packet to {path}", "saved {annotated} packets to {path}",
                  len(result.annotated)).format(annotated=len(result.annotated), path=result.path))
    note(text)
    return tied


def print_story(annotated: list[Annotated], calls: list[Call], events: list[KernelEvent],
                first_ts: int, view: PacketView, output: Output, *, json_: bool, explain: bool,
                overflows: int = 0) -> tuple[list[Call], list[KernelEvent]]:
    """The packets with the programs' calls and the kernel's events among them, tied to
    each other (:mod:`sockcap.analysis.story`); with ``--json`` one record a line, each
    with its ``type``. Returns the calls and events as tied."""
    calls = tie_calls(calls, annotated)
    events = tie_kernel(events, annotated, overflows)
    if view.explainer is not None:  # a FIN is explained by the call that sent it
        view.explainer.know_calls(calls)
    by_no = {a.no: a for a in annotated}
    shown = [placed(c, by_no) for c in calls]  # on the packets' clock, as the story shows them
    probes = ProbeFilter()
    for entry in story(annotated, calls, events):
        if entry.packet is not None:
            output.lines(view.styled(entry.packet))
        elif entry.call is not None:
            _print_call(entry.call, entry.moment, first_ts, _until(annotated, entry.call),
                        output, json_, events, explain)
        elif entry.event is not None and probes.shown(entry.event):
            if json_:
                record = kernel_record(entry.event, first_ts)
                record["calls"] = call_ties(entry.event, shown, events, first_ts)
                output.line(json_text(record))
                continue
            output.line(kernel_line(entry.event, first_ts), "magenta")
            failed = failed_call_line(entry.event, shown, events)
            if failed is not None:
                output.line(failed, "magenta")
            why = kernel_explain(entry.event) if explain else None
            if why is not None:
                output.line(why, "magenta")
    for finding in call_findings(calls, annotated):
        if json_:
            output.line(json_text(finding_record(finding, first_ts)))
        else:
            output.line(finding_line(finding, first_ts), "yellow")
    return calls, events


def json_text(record: dict[str, object]) -> str:
    """A record as one ``--json`` line, written as the packets' are."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _until(annotated: list[Annotated], call: Call) -> list[Annotated]:
    """The packets captured before ``call`` returned (those that can have made it fail)."""
    end = call.returned_ns + CLOCK_SLACK_NS
    return [a for a in annotated if a.packet.ts_ns <= end]


def _print_call(call: Call, moment: Moment, first_ts: int, before: list[Annotated],
                output: Output, json_: bool, events: list[KernelEvent] = [],  # noqa: B006
                explain: bool = False) -> None:
    if json_:
        if moment is not Moment.RETURNED:  # one record a call, with its begin and end
            record = call_record(call, first_ts, before)
            record["kernel"] = kernel_ties(call, events, first_ts)
            output.line(json_text(record))
        return
    output.line(call_line(call, first_ts, moment), "cyan")
    if moment is not Moment.BEGUN:
        cause = cause_line(call, before, events, first_ts)
        if cause is not None:
            output.line(cause, "cyan")
        why = call_explain(call) if explain else None
        if why is not None:
            output.line(why, "cyan")


def keep_story(path: str | None, calls: list[Call], events: list[KernelEvent], overflows: int,
               tied_calls: list[Call], tied_events: list[KernelEvent], first_ts: int,
               output: Output) -> None:
    """With a ``.pcapng`` file: the calls and kernel events kept in it (as recorded, for
    ``diagram`` and ``report`` of the file; the tied ones' lines as its packets' comments,
    for Wireshark). See :mod:`sockcap.pcapfile.storyfile`."""
    from sockcap.pcapfile.storyfile import save_story, wants_story

    if path is None or not wants_story(path) or not (calls or events):
        return
    from sockcap.analysis.storyrecords import story_records
    from sockcap.render.calls import packet_comments

    left_out = save_story(path, story_records(calls, events, overflows),
                          packet_comments(tied_calls, tied_events, first_ts))
    if left_out:
        output.note(_("sockcap: {count} calls and kernel events did not fit in {path}").format(
            count=left_out, path=path))


def _pictures(result: RunResult, pipeline: Pipeline, output: Output, *, diagram: bool,
              report: bool, force: bool, calls: list[Call] = [],  # noqa: B006 (not mutated)
              events: list[KernelEvent] = []) -> None:  # noqa: B006
    """``--diagram``: the ladder of the exchange; ``--report``: the HTML page next to the pcap."""
    if diagram and result.annotated:
        from sockcap.commands.diagram import print_ladder
        from sockcap.render.ladder import conversation_packets

        conv = result.annotated[0].conv
        if conv is not None:
            output.line("")
            print_ladder(conversation_packets(result.annotated, conv), pipeline.first_ts, output,
                         calls, events)
    if report and result.path is not None:
        import os

        from sockcap.commands.report import write_report

        out = os.path.splitext(result.path)[0] + ".html"
        write_report(result.annotated, pipeline.tracker.conversations, pipeline, result.path,
                     out, force, output, calls=calls, events=events)
