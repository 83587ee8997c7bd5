"""``sockcap check`` and ``sockcap grade``: run a student's programs on loopback, capture
what they put on the wire, and judge it (the judging is pure: :mod:`sockcap.analysis.check`)."""
