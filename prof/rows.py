"""The rows `prof` can trace, per personality, in the order the shell's `bench` runs them (its
N-th timed loop is row N; row 0 is the empty timing loop whose cost every row is printed less).

    microkernel: servers/shell/src/bench.rs (`calls`, `file_rows`, `fs_read`), between two calls
                 of `userlib::sys::rdtsc` (`measure_span`, `Report::start`)
    libos:       libos/cells/shell/src/bench.rs (`run`, `file_rows`, `time_reads`), between two
                 calls of `libos_kernel::sched::rdtsc` (`measure`, `time_reads`)

No gdb here: run.py, analyse.py and the gdb script share it.
"""

PERSONALITIES = {
    "microkernel": {
        "short": "mk",
        "elf": "shell",
        "rdtsc": "userlib::sys::rdtsc",
        # Functions whose calls of rdtsc are bench samples (shell::main times the boot).
        "sites": r"bench",
        "cr3": True,
        "rows": ["mk.timing_loop", "mk.null_call", "mk.ssr_call", "mk.fs_read", "mk.fs_write", "mk.fs_seek",
                 "mk.fs_open_close", "mk.fs_stat"],
    },
    "libos": {
        "short": "los",
        "elf": "axolotl-libos",
        "rdtsc": "libos_kernel::sched::rdtsc",
        # `run`'s closure is inlined into `without_preemption`; `time_reads` times los.fs_read.
        "sites": r"(cell_shell::bench|cell_shell::Shell as shellcmd::personality::Shell>::bench|libos_kernel::control::without_preemption)",
        "cr3": False,
        "rows": ["los.timing_loop", "los.fn_call", "los.cell_call", "los.channel_rtt", "los.fs_read", "los.fs_write",
                 "los.fs_seek", "los.fs_open_close", "los.fs_stat"],
    },
}


def personality_of(row):
    """The personality a row name (`mk.null_call`, `los.fs_seek`) belongs to."""
    for p, d in PERSONALITIES.items():
        if row in d["rows"]:
            return p
    names = ", ".join(r for d in PERSONALITIES.values() for r in d["rows"])
    raise SystemExit(f"prof: no row {row!r}; the rows: {names}")


def tag(row):
    """File-name stem of a row's outputs in prof/out: mk.fs_read -> mk_fs_read."""
    return row.replace(".", "_")
