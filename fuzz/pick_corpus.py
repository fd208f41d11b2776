#!/usr/bin/env python3
"""Picks a small corpus from a libFuzzer merge control file: every edge first, then
features, the files that bring most new ones per byte first, up to a byte budget.

    TARGET_BINARY -merge=1 -merge_control_file=CONTROL -max_len=65536 EMPTY_DIR DIR...
    pick_corpus.py CONTROL BUDGET_BYTES OUT_DIR [KEEP_PREFIX...]

Files whose name starts with a KEEP_PREFIX (the repository's named fixtures) are
kept first, whatever they bring. Prints what it kept: files, bytes, edges, features
(of all the inputs' edges and features).
"""
import heapq
import shutil
import sys
from pathlib import Path

control, budget, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
keep_prefixes = tuple(sys.argv[4:])
lines = Path(control).read_text().splitlines()
count = int(lines[0])
files = lines[2:2 + count]
size, ft, cov = {}, {}, {}
for line in lines[2 + count:]:
    parts = line.split()
    if not parts:
        continue
    index = int(parts[1])
    if parts[0] == "STARTED":
        size[index] = int(parts[2])
    elif parts[0] == "FT":
        ft[index] = set(map(int, parts[2:]))
    elif parts[0] == "COV":
        cov[index] = set(map(int, parts[2:]))
done = [i for i in size if i in ft]
all_cov = set().union(*(cov.get(i, set()) for i in done))
all_ft = set().union(*(ft[i] for i in done))
have_cov, have_ft, chosen, used = set(), set(), [], 0


def take(i):
    global used
    chosen.append(i)
    used += max(size[i], 1)
    have_cov.update(cov.get(i, ()))
    have_ft.update(ft[i])


for i in done:
    if Path(files[i]).name.startswith(keep_prefixes) and keep_prefixes:
        take(i)
# Lazy greedy: a file's gain only falls as others are taken, so a stale score is an
# upper bound; recompute the best one's and take it if it still leads.

def score(i):
    gain = 1000 * len(cov.get(i, set()) - have_cov) + len(ft[i] - have_ft)
    return gain / max(size[i], 64)


taken = set(chosen)
heap = [(-score(i), i) for i in done if i not in taken]
heapq.heapify(heap)
while heap:
    _, i = heapq.heappop(heap)
    now = score(i)
    if now <= 0:
        continue
    if heap and now < -heap[0][0]:
        heapq.heappush(heap, (-now, i))
        continue
    if used + size[i] > budget:
        continue
    take(i)
out.mkdir(parents=True, exist_ok=True)
names = set()
for i in chosen:
    name = Path(files[i]).name
    if name in names:
        continue
    names.add(name)
    shutil.copyfile(files[i], out / name)
print(f"kept {len(names)} files, {used} bytes, edges {len(have_cov)}/{len(all_cov)}, "
      f"features {len(have_ft)}/{len(all_ft)}")
