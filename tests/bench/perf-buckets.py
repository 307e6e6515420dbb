#!/usr/bin/env python3
"""Groups the samples of a `perf record -g` profile of `jhe serve` into buckets (see BENCHMARKS.md).

    perf script -i perf.data -F comm,tid,ip,sym > stacks.txt
    python3 tests/bench/perf-buckets.py stacks.txt                       # kernel vs user, user by nearest jhe:: frame
    python3 tests/bench/perf-buckets.py stacks.txt --callers 'EmbeddedTable as jhe::ports::Table>::get'

Stacks come from frame pointers (build with RUSTFLAGS="-C force-frame-pointers=yes"); glibc's
malloc/free have none, so their samples show no caller and get a bucket of their own.
"""
import collections
import re
import sys


def samples(path):
    cur = None
    for line in open(path, errors="replace"):
        if not line.strip():
            if cur is not None:
                yield cur
            cur = None
            continue
        if not line[0].isspace():
            cur = []
            continue
        parts = line.strip().split(" ", 1)
        if cur is not None:
            cur.append(parts[1] if len(parts) > 1 else "?")
    if cur:
        yield cur


KERNEL = [(n, re.compile(p)) for n, p in [
    ("kernel: fsync/fdatasync", r"fsync|fdatasync|sync_data"),
    ("kernel: futex (thread park/unpark)", r"futex"),
    ("kernel: scheduler/context switch", r"^schedule|__schedule|finish_task_switch|try_to_wake_up|irqentry_exit|exit_to_user_mode"),
    ("kernel: write/pwrite", r"vfs_write|pwrite|ksys_write"),
    ("kernel: socket send/recv", r"tcp_|sock_|__sys_sendto|__sys_recvfrom"),
]]
ALLOC = re.compile(r"malloc|free|unlink_chunk|memmove|memcpy|consolidate")


def simplify(s):
    return re.sub(r"::\{\{closure\}\}", "", s)


def buckets(path, top):
    total, kinds, user = 0, collections.Counter(), collections.Counter()
    for st in samples(path):
        total += 1
        kind = next((n for n, r in KERNEL if any(r.search(s) for s in st)), None)
        if kind is None and len(st) <= 2 and st and ALLOC.search(st[0]):
            kind = "glibc malloc/free/memcpy (caller not recorded)"
        if kind is None:
            kind = "user"
            jhe = [s for s in st if "jhe::" in s]
            in_redb = any("redb::" in s for s in st)
            name = jhe[0] if jhe else ("redb (store engine)" if in_redb else "other: " + (st[0][:60] if st else "?"))
            user[simplify(name)[:110]] += 1
        kinds[kind] += 1
    print(f"{total} samples")
    for k, v in kinds.most_common():
        print(f"{100 * v / total:6.1f}%  {k}")
    print("-- user time by nearest jhe:: frame --")
    for k, v in user.most_common(top):
        print(f"{100 * v / total:6.1f}%  {k}")


def callers(path, target):
    total, n, c = 0, 0, collections.Counter()
    for st in samples(path):
        total += 1
        idx = [i for i, s in enumerate(st) if target in s]
        if not idx:
            continue
        n += 1
        above = [simplify(s).replace("jhe::", "") for s in st[idx[0] + 1:] if "jhe::" in s and target not in s]
        c[" < ".join(a[:60] for a in above[:3])] += 1
    print(f"{n} of {total} samples have {target}; by caller chain:")
    for k, v in c.most_common(12):
        print(f"{100 * v / total:6.1f}%  {k}")


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[2] == "--callers":
        callers(sys.argv[1], sys.argv[3])
    else:
        buckets(sys.argv[1], 25)
