#!/usr/bin/env python3
"""The include stack of embsr's public headers: a one-way stack of folders, checked in CI.

    scripts/check_includes.py [--include-dir DIR] [--quiet]   check include/embsr (exit 1 on a problem)
    scripts/check_includes.py --self-test                     check the checker on fake trees

Every public header lives in include/embsr/<folder>/ and may include headers of its own folder and
of the folders on LOWER floors only:

    floor 1   core
    floor 2   data  <  graph  <  batch     graph may include data; batch data and graph; data neither
              dist                         (the MPI communicator) includes core only
    floor 3   layers
    floor 4   model
    floor 5   optim
    floor 6   io  <  train, serve          train and serve may include io; io includes neither;
                                           train and serve never include each other

Floor 6 is the strictest order the design allows: io (atomic files, the checkpoint format) stores
a model and its optimizer state and needs nothing of training or serving; the trainer writes
checkpoints (io), the recommender reads them (io); training and serving are independent of each
other (a server does not link the trainer, the trainer does not serve).

include/embsr/embsr.hpp (the umbrella) and include/embsr/version.hpp sit above/beside the stack:
their own includes are not checked; any header may include version.hpp (it includes nothing), no
header may include the umbrella. Also reported: includes of embsr headers that do not exist (a
header moved without its users), headers in or includes of a folder that is not on the stack, and
include cycles between files. Every `#include <embsr/...>` (and "..." include that resolves into
include/embsr) counts, also inside #if blocks; includes inside comments do not.
Standard library only (Debian's python3).
"""

import argparse
import os
import re
import sys
import tempfile

# (floor, folders of that floor, lowest first)
FLOORS = [
    (1, ["core"]),
    (2, ["data", "graph", "batch", "dist"]),
    (3, ["layers"]),
    (4, ["model"]),
    (5, ["optim"]),
    (6, ["io", "train", "serve"]),
]
# Which folders of its own floor a folder may include (besides itself).
SAME_FLOOR = {
    "data": set(),
    "graph": {"data"},
    "batch": {"data", "graph"},
    "dist": set(),
    "io": set(),
    "train": {"io"},
    "serve": {"io"},
}
UMBRELLA = "embsr/embsr.hpp"
EXEMPT = {UMBRELLA, "embsr/version.hpp"}   # top-level headers: their includes are not checked
INCLUDABLE_BY_ALL = {"embsr/version.hpp"}

FLOOR_OF = {folder: floor for floor, folders in FLOORS for folder in folders}


def allowed_folders(folder):
    """The folders a header of `folder` may include (its own included)."""
    floor = FLOOR_OF[folder]
    allowed = {f for f, fl in FLOOR_OF.items() if fl < floor}
    allowed |= SAME_FLOOR.get(folder, set())
    allowed.add(folder)
    return allowed


# ---- reading the includes ------------------------------------------------------------------------
_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.M)
_RAW_PREFIX = re.compile(r'(?:u8|u|U|L)?R"([^ ()\\\t\n]{0,16})\(')


def strip_comments(text):
    """The source with comments blanked (newlines kept, so line numbers stay), string and character
    literals (raw strings, digit separators) skipped over intact."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "/" and text.startswith("//", i):
            j = i
            while j < n and text[j] != "\n":      # a line comment ends at the newline (a trailing
                if text[j] == "\\" and text.startswith("\\\n", j):   # backslash continues it)
                    j += 1
                j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "uULR" and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) \
                and _RAW_PREFIX.match(text, i):
            m = _RAW_PREFIX.match(text, i)
            end = text.find(")" + m.group(1) + '"', m.end())
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(text[i:j])
            i = j
        elif c == '"' or (c == "'" and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
                                             and _in_number(text, i))):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(text[i:j])
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _in_number(text, i):
    """Whether the ' at text[i] is a digit separator (1'000'000, 0xFF'FF), not a u8'x' / L'x' prefix."""
    j = i
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_.'"):
        j -= 1
    return text[j].isdigit() or (text[j] == "." and j + 1 < len(text) and text[j + 1].isdigit())


def read_includes(path, include_root):
    """[(line, target)] for every include of `path` that names an embsr header: target is the path
    relative to include_root ("embsr/core/error.hpp"), quoted includes resolved as the compiler would
    (relative to the file first)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = strip_comments(f.read())
    found = []
    for m in _INCLUDE.finditer(text):
        kind, name = m.group(1), m.group(2).strip()
        line = text.count("\n", 0, m.start()) + 1
        target = None
        if kind == '"':
            local = os.path.normpath(os.path.join(os.path.dirname(path), name))
            rel = os.path.relpath(local, include_root)
            if os.path.exists(local) and rel.startswith("embsr" + os.sep):
                target = rel.replace(os.sep, "/")
        if target is None and (name.startswith("embsr/") or name == "embsr"):
            target = os.path.normpath(name).replace(os.sep, "/")
        if target is not None:
            found.append((line, target))
    return found


# ---- the check -----------------------------------------------------------------------------------
def folder_of(header):
    """'embsr/core/error.hpp' -> 'core'; a top-level header -> None."""
    parts = header.split("/")
    return parts[1] if len(parts) > 2 else None


def scan(include_root):
    """{header: [(line, target)]} for every .hpp under include_root/embsr."""
    headers = {}
    base = os.path.join(include_root, "embsr")
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(".hpp"):
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, include_root).replace(os.sep, "/")
                headers[rel] = read_includes(path, include_root)
    return headers


def find_cycles(headers):
    """Each include cycle between existing headers, as a list of headers [a, b, ..., a]."""
    graph = {h: sorted({t for _, t in incs if t in headers}) for h, incs in headers.items()}
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def strongconnect(v):   # Tarjan, iterative (no recursion limit on deep include chains)
        work = [(v, 0)]
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on_stack.add(v)
        while work:
            node, i = work[-1]
            if i < len(graph[node]):
                work[-1] = (node, i + 1)
                w = graph[node][i]
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on_stack.add(w)
                    work.append((w, 0))
                elif w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop(); on_stack.discard(w); comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1 or node in graph[node]:
                        sccs.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles = []
    for comp in sccs:           # one concrete cycle through the component's first header
        members = set(comp)
        start = comp[0]
        path, seen = [start], {start}
        node = start
        while True:
            nxt = [w for w in graph[node] if w in members]
            if start in nxt:
                path.append(start)
                break
            node = next((w for w in nxt if w not in seen), None)
            if node is None:    # cannot happen in a strongly connected component; be safe
                path.append("...")
                break
            path.append(node); seen.add(node)
        cycles.append(path)
    return cycles


def check(include_root):
    """(problems, headers): problems are 'file:line: message' strings, sorted."""
    headers = scan(include_root)
    problems = []
    rel_root = os.path.relpath(include_root)

    def where(header, line):
        return "%s:%d" % (os.path.join(rel_root, header), line)

    for header, includes in sorted(headers.items()):
        folder = folder_of(header)
        if header in EXEMPT:
            continue
        if folder is None:
            problems.append("%s: %s is at the top of include/embsr, outside every folder of the stack "
                            "(only %s are allowed there)" % (where(header, 1), header,
                                                             " and ".join(sorted(EXEMPT))))
            continue
        if folder not in FLOOR_OF:
            problems.append("%s: folder %s/ is not on the include stack (scripts/check_includes.py "
                            "FLOORS)" % (where(header, 1), folder))
            continue
        allowed = allowed_folders(folder)
        for line, target in includes:
            if target not in headers:
                problems.append("%s: %s includes %s, which does not exist" % (where(header, line), folder, target))
                continue
            if target in INCLUDABLE_BY_ALL:
                continue
            if target == UMBRELLA:
                problems.append("%s: %s includes the umbrella header %s (not allowed)" % (where(header, line), folder, target))
                continue
            tfolder = folder_of(target)
            if tfolder not in FLOOR_OF:
                problems.append("%s: %s includes %s (folder %s/ is not on the stack)" % (where(header, line), folder, target, tfolder))
            elif tfolder not in allowed:
                if FLOOR_OF[tfolder] > FLOOR_OF[folder]:
                    why = "a floor above"
                else:
                    why = "same floor, not allowed: %s may include %s" % (
                        folder, ", ".join(sorted(SAME_FLOOR.get(folder, ()))) or "none of " + ", ".join(
                            f for f in next(fs for fl, fs in FLOORS if fl == FLOOR_OF[folder]) if f != folder))
                problems.append("%s: %s includes %s (%s) [%s]" % (where(header, line), folder, tfolder, why, target))
    for cycle in find_cycles(headers):
        first, second = cycle[0], cycle[1]
        line = next((ln for ln, t in headers[first] if t == second), 1)
        problems.append("%s: include cycle: %s" % (where(first, line), " -> ".join(cycle)))
    return problems, headers


def print_table(headers, out):
    counts, uses = {}, {}
    for header, includes in headers.items():
        folder = folder_of(header)
        if folder is None:
            continue
        counts[folder] = counts.get(folder, 0) + 1
        for _, target in includes:
            tfolder = folder_of(target)
            if tfolder and tfolder != folder:
                uses.setdefault(folder, set()).add(tfolder)
    order = [f for _, fs in FLOORS for f in fs]
    key = lambda f: order.index(f) if f in order else len(order)
    out.write("embsr include stack (a folder may include its own and the lower floors' folders):\n")
    out.write("  %-5s %-7s %7s  %-34s %s\n" % ("floor", "folder", "headers", "may also include (same floor)", "includes now"))
    for floor, folders in reversed(FLOORS):     # top floor first, like a stack
        for folder in reversed(folders):
            same = ", ".join(sorted(SAME_FLOOR.get(folder, ()), key=key)) or "-"
            now = " ".join(sorted(uses.get(folder, ()), key=key)) or "-"
            out.write("  %-5d %-7s %7d  %-34s %s\n" % (floor, folder, counts.get(folder, 0), same, now))
    extra = sorted(f for f in counts if f not in FLOOR_OF)
    for folder in extra:
        out.write("  %-5s %-7s %7d  %-34s %s\n" % ("?", folder, counts[folder], "(not on the stack)",
                                                  " ".join(sorted(uses.get(folder, ()), key=key)) or "-"))
    out.write("  (exempt: %s)\n" % ", ".join(sorted(EXEMPT)))


def run(include_root, out, quiet=False):
    if not os.path.isdir(os.path.join(include_root, "embsr")):
        out.write("check_includes.py: no embsr/ folder in %s\n" % include_root)
        return 2
    problems, headers = check(include_root)
    if not quiet:
        print_table(headers, out)
    for p in problems:
        out.write(p + "\n")
    if problems:
        out.write("check_includes.py: %d include-stack problem(s) in %d headers (rule: "
                  "scripts/check_includes.py --help)\n" % (len(problems), len(headers)))
        return 1
    out.write("check_includes.py: %d headers, include stack OK\n" % len(headers))
    return 0


# ---- self-test -----------------------------------------------------------------------------------
def self_test():
    import io

    def make(tree):
        d = tempfile.mkdtemp(prefix="embsr-check-includes-")
        for rel, text in tree.items():
            path = os.path.join(d, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        return d

    clean = {
        "embsr/core/error.hpp": "#pragma once\n",
        "embsr/core/types.hpp": '#pragma once\n#include "error.hpp"\n',
        "embsr/data/vocab.hpp": "#pragma once\n#include <embsr/core/types.hpp>\n"
                                "// #include <embsr/model/net.hpp>  (a comment does not count)\n"
                                "/* #include <embsr/serve/app.hpp>\n   neither does this */\n"
                                'const char* s = "/*"; int big = 1\'000; char q = \'"\';\n',
        "embsr/graph/g.hpp": "#pragma once\n#include <embsr/data/vocab.hpp>\n",
        "embsr/batch/b.hpp": "#pragma once\n#include <embsr/graph/g.hpp>\n#  include <embsr/data/vocab.hpp>\n",
        "embsr/model/net.hpp": "#pragma once\n#include <embsr/batch/b.hpp>\n#include <embsr/version.hpp>\n",
        "embsr/io/ckpt.hpp": "#pragma once\n#include <embsr/model/net.hpp>\n",
        "embsr/train/t.hpp": "#pragma once\n#include <embsr/io/ckpt.hpp>\n",
        "embsr/serve/app.hpp": "#pragma once\n#include <embsr/io/ckpt.hpp>\n",
        "embsr/version.hpp": "#pragma once\n",
        "embsr/embsr.hpp": "#pragma once\n#include <embsr/serve/app.hpp>\n#include <embsr/train/t.hpp>\n",
    }
    cases = [
        ("clean tree", {}, 0, []),
        ("data includes graph", {"embsr/data/bad.hpp": "#pragma once\n\n#include <embsr/graph/g.hpp>\n"},
         1, ["embsr/data/bad.hpp:3: data includes graph (same floor, not allowed"]),
        ("core includes a floor above", {"embsr/core/bad.hpp": '#include "../layers/x.hpp"\n',
                                         "embsr/layers/x.hpp": "#pragma once\n"},
         1, ["embsr/core/bad.hpp:1: core includes layers (a floor above)"]),
        ("io includes train", {"embsr/io/ckpt.hpp": "#pragma once\n#include <embsr/train/t.hpp>\n"},
         1, ["embsr/io/ckpt.hpp:2: io includes train (same floor", "include cycle"]),
        ("serve includes train", {"embsr/serve/x.hpp": "#include <embsr/train/t.hpp>\n"},
         1, ["embsr/serve/x.hpp:1: serve includes train (same floor"]),
        ("cycle inside a folder", {"embsr/core/a.hpp": "#include <embsr/core/b.hpp>\n",
                                   "embsr/core/b.hpp": "#include <embsr/core/a.hpp>\n"},
         1, ["embsr/core/a.hpp:1: include cycle: embsr/core/a.hpp -> embsr/core/b.hpp -> embsr/core/a.hpp"]),
        ("missing header", {"embsr/layers/l.hpp": "#include <embsr/data/ragged_batch.hpp>\n"},
         1, ["embsr/layers/l.hpp:1: layers includes embsr/data/ragged_batch.hpp, which does not exist"]),
        ("unknown folder", {"embsr/util/u.hpp": "#pragma once\n"}, 1, ["folder util/ is not on the include stack"]),
        ("umbrella included", {"embsr/serve/y.hpp": "#include <embsr/embsr.hpp>\n"},
         1, ["serve includes the umbrella header"]),
    ]
    failures = 0
    for name, change, want_rc, want_msgs in cases:
        tree = dict(clean)
        tree.update(change)
        d = make(tree)
        buf = io.StringIO()
        cwd = os.getcwd()
        try:
            os.chdir(d)   # messages name files relative to the working directory
            rc = run(".", buf, quiet=True)
        finally:
            os.chdir(cwd)
        text = buf.getvalue()
        missing = [m for m in want_msgs if m not in text]
        ok = rc == want_rc and not missing
        failures += not ok
        print("self-test %-30s %s" % (name, "ok" if ok else "FAILED (exit %d, want %d; missing %s)\n%s"
                                      % (rc, want_rc, missing, text)))
        for dirpath, _, files in os.walk(d, topdown=False):
            for f in files:
                os.remove(os.path.join(dirpath, f))
            os.rmdir(dirpath)
    print("check_includes.py self-test: %s" % ("FAILED" if failures else "ok"))
    return 1 if failures else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n", 4)[4],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--include-dir", default=os.path.join(here, "..", "include"),
                        help="the folder that holds embsr/ (default: the repository's include/)")
    parser.add_argument("--quiet", action="store_true", help="print only the problems")
    parser.add_argument("--self-test", action="store_true", help="check the checker on fake trees")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    return run(os.path.normpath(args.include_dir), sys.stdout, args.quiet)


if __name__ == "__main__":
    sys.exit(main())
