#!/usr/bin/env python3
"""sass_loops.py: what the GPU executes per iteration of a kernel's loops, read from its SASS.

Usage: sass_loops.py CUOBJDUMP_SASS_FILE KERNEL...

For each kernel, the registers are ptxas's business (make sass-stats prints them); this prints
the kernel's instruction count and, for each loop of more than 30 instructions (a backward
branch to an earlier address), its length and its most frequent opcodes. An SM sub-partition
issues one warp instruction per clock, so in a tensor-core loop the instructions per HMMA say
whether the loop can keep the tensor cores busy (a m16n8k16 HMMA takes several clocks) or
waits on its own issue. A loop's length is static: code that runs in one case or another
(a full tile's copy and a partial tile's) counts once each.
"""
import collections
import re
import sys


def kernel_instructions(lines, name):
    """(address, text) of each instruction of kernel name in cuobjdump -sass output."""
    out, inside = [], False
    for line in lines:
        if "Function : " in line:
            inside = line.split("Function : ")[1].strip() == name
            continue
        if inside:
            m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;", line)
            if m:
                out.append((int(m.group(1), 16), m.group(2)))
    return out


def opcode(text):
    """The opcode's base name: 'HMMA' for '@P0 HMMA.16816.F32.BF16 R1, ...'."""
    words = text.split()
    if words and words[0].startswith("@"):
        words = words[1:]
    return words[0].split(".")[0] if words else ""


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lines = open(sys.argv[1]).read().split("\n")
    for name in sys.argv[2:]:
        ins = kernel_instructions(lines, name)
        if not ins:
            sys.exit(f"sass_loops.py: no kernel {name} in {sys.argv[1]}")
        print(f"{name}: {len(ins)} instructions")
        index = {a: i for i, (a, _) in enumerate(ins)}
        loops = []
        for i, (a, text) in enumerate(ins):
            m = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", text)
            if not m or int(m.group(1), 16) >= a or int(m.group(1), 16) not in index:
                continue
            start = int(m.group(1), 16)
            # A branch back into a loop from past its end is the return of out-of-line code
            # (BRA.DIV's path for a diverged warp), not a loop of its own.
            if any(s < start <= e < a for s, e in loops):
                continue
            loops.append((start, a))
            body = ins[index[start] : i + 1]
            if len(body) <= 30:
                continue
            ops = collections.Counter(opcode(t) for _, t in body)
            hmma = ops.get("HMMA", 0)
            per = f", {len(body) / hmma:.1f} per HMMA" if hmma else ""
            top = ", ".join(f"{o} {n}" for o, n in ops.most_common(12))
            print(f"  loop {start:#x}..{a:#x}: {len(body)} instructions{per}: {top}")


if __name__ == "__main__":
    main()
