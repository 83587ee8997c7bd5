"""The verdicts on one scenario of ``sockcap check``, whichever program it was about.

The one entry of the judging: a scenario over the lab's link goes to
:mod:`sockcap.analysis.check.udp`, one of the student's server to
:mod:`sockcap.analysis.check.server`, one of the student's client to
:mod:`sockcap.analysis.check.client`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sockcap.analysis.check.calls import judge_calls
from sockcap.analysis.check.client import CLIENT_CHECK_OF, judge_client
from sockcap.analysis.check.codes import Scenario, ScenarioRun, Verdict
from sockcap.analysis.check.server import judge_server
from sockcap.analysis.check.udp import (
    judge_udp_client_duplicates,
    judge_udp_client_loss,
    judge_udp_client_reorder,
    judge_udp_clients,
    judge_udp_large,
)
from sockcap.analysis.conversation import Annotated

_UDP_JUDGES = {Scenario.UDP_CLIENTS: judge_udp_clients, Scenario.UDP_LARGE: judge_udp_large,
               Scenario.UDP_CLIENT_LOSS: judge_udp_client_loss,
               Scenario.UDP_CLIENT_DUPLICATES: judge_udp_client_duplicates,
               Scenario.UDP_CLIENT_REORDER: judge_udp_client_reorder}


def judge_scenario(packets: Sequence[Annotated], run: ScenarioRun) -> list[Verdict]:
    """The verdicts on one scenario, whichever program it was about: from its packets,
    then from the programs' own calls where they were recorded
    (:func:`sockcap.analysis.check.calls.judge_calls`)."""
    if run.scenario in _UDP_JUDGES and run.listening:
        verdicts = _UDP_JUDGES[run.scenario](packets, run)
    elif run.scenario not in CLIENT_CHECK_OF:
        verdicts = judge_server(packets, run)
    else:
        verdicts = judge_client(packets, run)
    return verdicts + judge_calls(packets, run)
