"""The compiled engine's build: its sources and compiler arguments, in one place.

``setup.py`` builds ``sockcap._speedups`` from these (with setuptools), and
``scripts/pgo.py`` builds it again from the same, guided by a profile of its own run.
"""

NAME = "sockcap._speedups"
SOURCES = ["sockcap/_speedups.c"]
DEPENDS = ["sockcap/_engine_contract.h", "sockcap/_speedups_json.h",
           "sockcap/_speedups_color.h", "sockcap/_speedups_tcpdump.h",
           "sockcap/_speedups_columns.h", "sockcap/_speedups_plain.h",
           "sockcap/_speedups_packet.h", "sockcap/_speedups_explain.h",
           "sockcap/_speedups_convcols.h", "sockcap/_speedups_spill.h",
           "sockcap/_speedups_reuse.h"]
COMPILE_ARGS = ["-O3", "-std=c11", "-Wall", "-Wno-missing-field-initializers"]
