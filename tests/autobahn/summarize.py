#!/usr/bin/env python3
"""Summarize an Autobahn|Testsuite report and judge it.

    summarize.py REPORT/index.json [--cases CASES.json] [--expected FILE [--write-expected]]
                 [--name NAME] [--agent AGENT]

Prints one table row per case group (1, 2, ... 10; 12.1 ... 13.7 by sub-group) with the count of
each verdict and the ids of the cases that are not OK or INFORMATIONAL, then the details of those
cases, then the differences from the expected verdicts.

A case's verdict is the worse of its two outcomes in the report:
  behavior       OK, NON-STRICT, INFORMATIONAL, UNIMPLEMENTED as is; anything else is FAILED
  behaviorClose  OK, INFORMATIONAL as is; WRONG CODE and FAILED BY CLIENT count as NON-STRICT
                 (the report colours them as such); UNCLEAN, FAILED and anything else as FAILED
  (worst first: FAILED, UNIMPLEMENTED, NON-STRICT, INFORMATIONAL, OK).
A case that --cases selects but that has no result in the report is MISSING.

Exit status: 0 when every case is OK or INFORMATIONAL, none is missing, and (when the expected
file exists) every selected case has its expected behavior and behaviorClose; 1 otherwise;
2 on bad input. --write-expected writes the expected file from this report instead of comparing.
"""

import argparse
import json
import os
import sys

OK, NON_STRICT, INFO, UNIMPL, FAILED, MISSING = (
    "OK",
    "NON-STRICT",
    "INFORMATIONAL",
    "UNIMPLEMENTED",
    "FAILED",
    "MISSING",
)
COLUMNS = [OK, NON_STRICT, INFO, UNIMPL, FAILED, MISSING]
SEVERITY = {OK: 0, INFO: 1, NON_STRICT: 2, UNIMPL: 3, FAILED: 4, MISSING: 5}
PASSING = {OK, INFO}

BEHAVIOR = {"OK": OK, "NON-STRICT": NON_STRICT, "INFORMATIONAL": INFO, "UNIMPLEMENTED": UNIMPL}
BEHAVIOR_CLOSE = {
    "OK": OK,
    "INFORMATIONAL": INFO,
    "WRONG CODE": NON_STRICT,
    "FAILED BY CLIENT": NON_STRICT,
}

MAX_DETAILS = 40  # lines of per-case detail; CI logs stay readable when everything fails
TITLE_WIDTH = 34


def case_key(case_id):
    return tuple(int(part) for part in case_id.split("."))


def group_of(case_id):
    """Case groups: the first number, and for 12.* / 13.* (deflate) the sub-group too."""
    parts = case_id.split(".")
    if parts[0] in ("12", "13") and len(parts) > 2:
        return parts[0] + "." + parts[1]
    return parts[0]


def verdict(behavior, behavior_close):
    first = BEHAVIOR.get(behavior, FAILED)
    second = BEHAVIOR_CLOSE.get(behavior_close, FAILED)
    return max(first, second, key=SEVERITY.__getitem__)


def compress_ids(ids, order):
    """'12.2.1..12.2.18' for runs of three or more cases that follow each other in `order`."""
    position = {case_id: i for i, case_id in enumerate(order)}
    ids = sorted(ids, key=lambda c: position[c])
    out, run = [], []
    for case_id in ids:
        if run and position[case_id] != position[run[-1]] + 1:
            out.append(run)
            run = []
        run.append(case_id)
    if run:
        out.append(run)
    text = []
    for run in out:
        if len(run) >= 3:
            text.append(f"{run[0]}..{run[-1]}")
        else:
            text.extend(run)
    return " ".join(text)


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        print(f"summarize: cannot read {what} {path}: {exc}", file=sys.stderr)
        sys.exit(2)


def pick_agent(index, agent, name):
    agents = sorted(index)
    if not agents:
        return None  # wstest wrote an empty report: every selected case is MISSING
    if agent:
        if agent not in index:
            print(f"summarize: agent {agent!r} not in the report (agents: {agents})", file=sys.stderr)
            sys.exit(2)
        return agent
    if len(agents) == 1:
        return agents[0]
    if name in index:
        return name
    print(f"summarize: the report has agents {agents}; choose one with --agent", file=sys.stderr)
    sys.exit(2)


def shorten(text, width):
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def print_table(name, selected, verdicts, categories, subcategories):
    groups = {}
    for case_id in selected:
        groups.setdefault(group_of(case_id), []).append(case_id)
    widths = [max(len(c), 3) for c in COLUMNS]
    header = f"{'group':<6} {'title':<{TITLE_WIDTH}} " + " ".join(
        f"{c:>{w}}" for c, w in zip(COLUMNS, widths)
    )
    rule = "-" * (len(header) + 2 + len("not OK/INFORMATIONAL"))
    print(rule)
    print(f"{header}  not OK/INFORMATIONAL")
    print(rule)
    totals = dict.fromkeys(COLUMNS, 0)
    for group in sorted(groups, key=case_key):
        ids = groups[group]
        counts = dict.fromkeys(COLUMNS, 0)
        bad = {}
        for case_id in ids:
            v = verdicts[case_id]
            counts[v] += 1
            if v not in PASSING:
                bad.setdefault(v, []).append(case_id)
        for c in COLUMNS:
            totals[c] += counts[c]
        title = subcategories.get(group) if "." in group else categories.get(group)
        cells = " ".join(f"{counts[c]:>{w}}" for c, w in zip(COLUMNS, widths))
        notes = "; ".join(
            f"{v} {compress_ids(bad[v], selected)}" for v in sorted(bad, key=SEVERITY.__getitem__, reverse=True)
        )
        print(f"{group:<6} {shorten(title or '', TITLE_WIDTH):<{TITLE_WIDTH}} {cells}  {notes}".rstrip())
    print(rule)
    cells = " ".join(f"{totals[c]:>{w}}" for c, w in zip(COLUMNS, widths))
    print(f"{'total':<6} {f'{len(selected)} cases':<{TITLE_WIDTH}} {cells}")
    print(rule)
    return totals


def print_details(selected, verdicts, results, report_dir):
    bad = [c for c in selected if verdicts[c] not in PASSING]
    if not bad:
        return
    print(f"cases not OK/INFORMATIONAL ({len(bad)}):")
    for case_id in bad[:MAX_DETAILS]:
        entry = results.get(case_id)
        if entry is None:
            print(f"  {case_id:<9} {MISSING:<13}  no result in the report (the run stopped before it?)")
            continue
        report = entry.get("reportfile", "")
        if report.endswith(".json"):
            report = report[: -len(".json")] + ".html"
        where = os.path.join(report_dir, report) if report else ""
        print(
            f"  {case_id:<9} {verdicts[case_id]:<13}  behavior {entry.get('behavior')}, "
            f"close {entry.get('behaviorClose')} (code {entry.get('remoteCloseCode')})  {where}"
        )
    if len(bad) > MAX_DETAILS:
        print(f"  ... and {len(bad) - MAX_DETAILS} more (see the table above and the HTML report)")


def write_expected(path, name, selected, results):
    cases = {c: results[c] for c in selected if c in results}
    lines = [
        "{",
        '  "about": '
        + json.dumps(
            f"Autobahn|Testsuite verdicts expected of {name}: behavior and behaviorClose per case, "
            "no timings. Written by tests/autobahn/summarize.py --write-expected."
        )
        + ",",
        '  "cases": {',
    ]
    items = [
        f"    {json.dumps(c)}: "
        + json.dumps({"behavior": cases[c]["behavior"], "behaviorClose": cases[c]["behaviorClose"]})
        for c in cases
    ]
    lines.append(",\n".join(items))
    lines += ["  }", "}", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    print(f"wrote {len(cases)} verdicts to {path}")
    if len(cases) < len(selected):
        print(f"warning: {len(selected) - len(cases)} selected cases had no result and are not in it")


def compare_expected(path, selected, results):
    """Returns the list of differences (printed here)."""
    expected = load_json(path, "expected file").get("cases", {})
    diffs = []
    for case_id in selected:
        want = expected.get(case_id)
        got = results.get(case_id)
        if got is None:
            continue  # already a failure (MISSING) in the table; no need to say it twice
        got_pair = (got["behavior"], got["behaviorClose"])
        if want is None:
            diffs.append(f"  {case_id:<9} not in the expected file; got {'/'.join(got_pair)}")
        elif got_pair != (want["behavior"], want["behaviorClose"]):
            diffs.append(
                f"  {case_id:<9} expected {want['behavior']}/{want['behaviorClose']}, got {'/'.join(got_pair)}"
            )
    not_run = [c for c in expected if c not in set(selected)]
    base = os.path.basename(path)
    if not_run:
        print(f"note: {len(not_run)} cases of {base} were not selected in this run (--quick?); not compared")
    if diffs:
        print(f"differences from {base} ({len(diffs)}; behavior/behaviorClose):")
        for line in diffs[:MAX_DETAILS]:
            print(line)
        if len(diffs) > MAX_DETAILS:
            print(f"  ... and {len(diffs) - MAX_DETAILS} more")
    else:
        print(f"verdicts match {base} ({len(selected)} cases)")
    return diffs


def main(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("index", help="index.json of the wstest report")
    parser.add_argument("--cases", help="cases.json written by the runner: the cases the spec selects, group titles")
    parser.add_argument("--expected", help="expected-FACE-ROLE.json to compare the verdicts with")
    parser.add_argument("--write-expected", action="store_true", help="write --expected from this report")
    parser.add_argument("--name", default="", help="name of the run, e.g. rust-server (for the messages)")
    parser.add_argument("--agent", help="agent of the report to read (default: the only one)")
    args = parser.parse_args(argv)
    if args.write_expected and not args.expected:
        parser.error("--write-expected needs --expected FILE")

    index = load_json(args.index, "report index")
    agent = pick_agent(index, args.agent, args.name)
    name = args.name or agent or "autobahn"
    results = index[agent] if agent else {}
    for case_id, entry in results.items():
        if "behavior" not in entry or "behaviorClose" not in entry:
            print(f"summarize: case {case_id} in {args.index} has no behavior/behaviorClose", file=sys.stderr)
            return 2

    categories, subcategories = {}, {}
    if args.cases:
        listing = load_json(args.cases, "case list")
        selected = list(listing["cases"])
        categories = listing.get("categories", {})
        subcategories = listing.get("subcategories", {})
        extra = sorted(set(results) - set(selected), key=case_key)
        if extra:
            print(f"note: the report has {len(extra)} cases the spec did not select: {' '.join(extra[:10])}")
            selected += extra
    else:
        selected = list(results)
    selected.sort(key=case_key)

    verdicts = {}
    for case_id in selected:
        entry = results.get(case_id)
        verdicts[case_id] = MISSING if entry is None else verdict(entry["behavior"], entry["behaviorClose"])

    print(f"Autobahn|Testsuite {name}: {len(selected)} cases, report {os.path.dirname(args.index) or '.'}")
    totals = print_table(name, selected, verdicts, categories, subcategories)
    print_details(selected, verdicts, results, os.path.dirname(args.index))

    diffs = []
    if args.expected and args.write_expected:
        write_expected(args.expected, name, selected, results)
    elif args.expected and os.path.exists(args.expected):
        diffs = compare_expected(args.expected, selected, results)
    elif args.expected:
        print(
            f"notice: no expected file {args.expected}: judging by the verdicts only "
            "(write it with --write-expected, or AUTOBAHN_WRITE_EXPECTED=1 for the runners)"
        )

    passed = totals[OK] + totals[INFO]
    failed = len(selected) - passed
    problems = [f"{totals[c]} {c}" for c in (FAILED, MISSING, UNIMPL, NON_STRICT) if totals[c]]
    if diffs:
        problems.append(f"{len(diffs)} differences from {os.path.basename(args.expected)}")
    print(f"{name}: {'FAIL: ' + ', '.join(problems) if problems else 'PASS'}")
    print(f"autobahn: {passed} passed, {failed} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
