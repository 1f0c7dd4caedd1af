"""gdb batch script (run by prof/run.py PERSONALITY ROW), in two boots.

PROF_MODE=learn: the opening rdtsc call site of each timed loop of the shell's `bench`, in the
order it runs them (stepper.learn_sites), to prof/out/PERSONALITY_sites.txt; then QEMU is
stopped (those stops disturb the samples they fall in).

PROF_MODE=trace: every instruction of the SKIP+1-th sample of row PROF_ROW (see rows.py), from
the first rdtsc (included) to the second (excluded), to prof/out/TAG_trace.txt
(`pc rcx rdx rsp rax [cr3]`), the count to TAG_sample.txt and, microkernel, the shell's CR3 to
TAG_cr3.txt (analyse.py matches the other CR3s to server ELFs); then gdb detaches and the guest
prints its rows.
"""
import gdb, os, sys

sys.path.insert(0, os.environ["PROF_DIR"])
import rows
import stepper

row = os.environ["PROF_ROW"]
personality = rows.personality_of(row)
p = rows.PERSONALITIES[personality]
tag = rows.tag(row)
elf = os.path.join(stepper.REL, p["elf"])
sites = os.path.join(stepper.OUT, f"{personality}_sites.txt")
stepper.attach(elf)
if os.environ["PROF_MODE"] == "learn":
    seen = stepper.learn_sites(elf, p["rdtsc"], p["sites"], len(p["rows"]), with_cr3=p["cr3"])
    with open(sites, "w") as f:
        for name, (open_site, close_site, n) in zip(p["rows"], seen):
            f.write(f"{name} {open_site:x} {close_site:x}\n")
    gdb.execute("delete")
    gdb.execute("kill")
else:
    site = {l.split()[0]: int(l.split()[1], 16) for l in open(sites)}[row]
    steps, cr3 = stepper.trace_row(elf, p["rdtsc"], site, int(os.environ.get("PROF_SKIP", "3")),
                                   os.path.join(stepper.OUT, f"{tag}_trace.txt"), with_cr3=p["cr3"])
    if p["cr3"]:
        with open(os.path.join(stepper.OUT, f"{tag}_cr3.txt"), "w") as f:
            f.write(f"shell {cr3:x}\n")
    stepper.finish(tag, row, steps)
