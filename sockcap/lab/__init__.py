"""``sockcap lab``: two hosts in network namespaces, a lossy link between them, an echo
over TCP and over UDP, captured at both ends (edge code: namespaces, interfaces, rules,
processes; the merge of the two captures and the verdict are pure, in
:mod:`sockcap.analysis.link`)."""
