"""``sockcap lab``: two hosts in network namespaces, a link between them that loses,
delays, slows, reorders, duplicates or corrupts packets (a bridge with nftables rules, or
sockcap's own delay line, :mod:`sockcap.lab.forwarder`), the same echo over TCP and over
UDP, captured at both ends (edge code: namespaces, interfaces, rules, processes; the
link's decisions, the merge of the two captures and the verdict are pure, in
:mod:`sockcap.analysis.shape` and :mod:`sockcap.analysis.link`)."""
