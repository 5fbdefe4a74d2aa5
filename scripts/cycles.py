#!/usr/bin/env python3
"""Import circles between the modules of a Rust crate.

    python3 scripts/cycles.py actors/src

Rust allows modules to use each other in a circle; we do not, so that a
module can be read, tested and moved with only what it stands on. A module
may use its parent and its children (the idiomatic mod.rs with shared types
that its children use, and that uses them); between the children of one
parent the uses must form no circle. Each parent's children are checked as
whole subtrees: `a::x` using `b::y` counts as `a` using `b`.

Read from the source, roughly: `use` trees (braces, `self`, globs), paths
in code starting with `crate::`, `super::`, `self::` or the name of a child
module; comments, strings and `#[cfg(test)]` items are left out (tests may
use anything). Prints each circle with a use that makes each step of it;
exits 1 if there is one.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z_0-9]*"


def strip_comments_and_strings(src):
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', src[i:]) and not re.match(r"[A-Za-z_0-9]", src[i - 1 : i] or " "):
            hashes = re.match(r"r(#*)\"", src[i:]).group(1)
            end = src.find('"' + hashes, i + 2 + len(hashes))
            out.append('""')
            i = n if end < 0 else end + 1 + len(hashes)
        elif c == '"':
            i += 1
            while i < n and src[i] != '"':
                i += 2 if src[i] == "\\" else 1
            out.append('""')
            i += 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", src[i:]):
            # A char literal (a lifetime has no closing quote).
            m = re.match(r"'(\\[^']*|[^\\'])'", src[i:])
            out.append("' '")
            i += len(m.group(0)) if m else 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def item_end(src, i):
    """The end of the item starting at i: its matching brace or `;`."""
    depth = 0
    while i < len(src):
        c = src[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == ";" and depth == 0:
            return i + 1
        i += 1
    return len(src)


def strip_test_items(src):
    """Removes every `#[cfg(test)]` (or `all(test, …)`) item; returns the source and the
    names of child modules declared test-only (`#[cfg(test)] mod x;`)."""
    test_mods = set()
    while True:
        # `test` or `all(test, …)`; `not(test)` code is built.
        m = re.search(r"#\[cfg\((?:all\((?:[^\]]*,\s*)?)?test\b[^\]]*\]", src)
        if not m:
            return src, test_mods
        start = m.start()
        rest = m.end()
        # Further attributes on the same item.
        while True:
            a = re.match(r"\s*#\[[^\]]*\]", src[rest:])
            if not a:
                break
            rest += a.end()
        d = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", src[rest:])
        if d:
            test_mods.add(d.group(1))
        src = src[:start] + src[item_end(src, rest) :]


def expand_use(tree):
    """`a::{b, c::{d, self}}` → ['a::b', 'a::c::d', 'a::c']."""
    tree = re.sub(r"\s+as\s+" + IDENT, "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += ch == "{"
            depth -= ch == "}"
            cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, t):
        if "{" in t:
            head, _, body = t.partition("{")
            body = body[: body.rfind("}")]
            head = head.rstrip(":")
            base = prefix + ("::" if prefix and head else "") + head
            for part in split_top(body):
                walk(base, part)
        else:
            if t in ("self", "*"):
                out.append(prefix)
            else:
                out.append(prefix + ("::" if prefix else "") + t)

    walk("", tree)
    return out


class Crate:
    def __init__(self, root):
        self.root = root
        self.files = {}  # module path -> source (tests stripped)
        self.children = {}  # module path -> declared child names (not test-only)
        self.test_only = set()
        for dp, _, fns in os.walk(root):
            for f in fns:
                if not f.endswith(".rs"):
                    continue
                p = os.path.join(dp, f)
                rel = os.path.relpath(p, root)[:-3]
                mod = rel.replace(os.sep, "::")
                if mod.endswith("::mod"):
                    mod = mod[:-5]
                if mod in ("lib", "main"):
                    mod = ""
                with open(p) as fh:
                    src = strip_comments_and_strings(fh.read())
                src, tests = strip_test_items(src)
                self.files[mod] = src
                self.children[mod] = set(
                    re.findall(r"(?:^|[;}\s])(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", src)
                )
                self.test_only |= {join(mod, t) for t in tests}
        # Drop test-only modules and everything under them.
        for m in list(self.files):
            if any(m == t or m.startswith(t + "::") for t in self.test_only):
                del self.files[m]
        self.mods = set(self.files)

    def resolve(self, mod, path):
        """The module a path used in `mod` names, or None (std, other crates)."""
        parts = path.split("::")
        if parts[0] == "crate":
            base, parts = [], parts[1:]
        elif parts[0] in ("self", "super"):
            base = mod.split("::") if mod else []
            while parts and parts[0] in ("self", "super"):
                if parts[0] == "super":
                    base = base[:-1]
                parts = parts[1:]
        elif parts[0] in self.children.get(mod, ()):
            base = mod.split("::") if mod else []
        else:
            return None
        full = base + parts
        for i in range(len(full), -1, -1):
            m = "::".join(full[:i])
            if m in self.mods:
                return m
        return None

    def uses(self):
        """(from module, to module, the path as written)."""
        for mod, src in self.files.items():
            paths = []
            for m in re.finditer(r"\buse\s+([^;]*);", src):
                paths += expand_use(m.group(1))
            code = re.sub(r"\buse\s+[^;]*;", "", src)
            starts = r"crate|super|self"
            kids = "|".join(sorted(self.children.get(mod, ())))
            if kids:
                starts += "|" + kids
            for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:" + starts + r")(?:::" + IDENT + ")+)", code):
                paths.append(m.group(1))
            for p in paths:
                t = self.resolve(mod, p)
                if t is not None and t != mod:
                    yield mod, t, p


def join(a, b):
    return a + "::" + b if a else b


def sccs(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    crate = Crate(sys.argv[1] if len(sys.argv) > 1 else "src")
    uses = list(crate.uses())
    found = 0
    for parent in sorted(crate.mods):
        kids = [m for m in crate.mods if m and (m.rsplit("::", 1)[0] if "::" in m else "") == parent]
        if len(kids) < 2:
            continue

        def top(m):
            for k in kids:
                if m == k or m.startswith(k + "::"):
                    return k
            return None

        edges, why = {}, {}
        for a, b, p in uses:
            ta, tb = top(a), top(b)
            if ta and tb and ta != tb:
                edges.setdefault(ta, set()).add(tb)
                why.setdefault((ta, tb), f"{a or 'crate'} uses {p}")
        for comp in sccs(kids, edges):
            found += 1
            print(f"circle under {parent or 'crate'}: {', '.join(comp)}")
            for a in comp:
                for b in sorted(edges.get(a, ())):
                    if b in comp:
                        print(f"  {a} -> {b}: {why[(a, b)]}")
    if found:
        sys.exit(1)
    print("no import circles")


if __name__ == "__main__":
    main()
