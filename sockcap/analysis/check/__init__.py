"""Judging a student's programs from the wire (``sockcap check``, ``sockcap grade``): pure.

- :mod:`.codes`: the scenarios, the checks and the findings as codes; the record of what
  the edge ran (:class:`~.codes.ScenarioRun`) and of a verdict (:class:`~.codes.Verdict`);
- :mod:`.streams`: what one conversation's packets say (the reassembled byte streams, the
  echo comparison, the facts of one exchange);
- :mod:`.judge`: the one entry, :func:`~.judge.judge_scenario`, which hands a scenario
  to the judge of its program: :mod:`.server` (the student's echo server), :mod:`.client`
  (the student's client against sockcap's server), :mod:`.udp` (UDP over the lab's link).

The teacher's own expectations are :mod:`sockcap.analysis.expect`; the words of every
finding are :mod:`sockcap.render.check`; the edge that runs and captures is
:mod:`sockcap.check`. (Once one module of 784 lines beside ``client_check`` and
``udp_check``: split so that each name says what it holds.)
"""
