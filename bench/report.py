"""Targets, verdicts and the printed table."""

from __future__ import annotations

from typing import Any

TARGETS = {"job": 1.5, "page": 3.0, "worker": 2.0}
DELIVERY_P99_MS = 250.0
MEMORY_PER_SUBSCRIBER_KB = 50.0
GROWTH_RATIO = 1.5
JUDGED_SUBSCRIBERS = 1000
LABELS = {
    "job": "job by id",
    "page": "page of 100 jobs",
    "worker": "worker lifecycle",
    "subscriptions": "subscription fan-out",
    "growth": "growth (filtered page of 50)",
}


def verdicts(results: dict[str, Any], *, real_mongodb: bool) -> dict[str, Any]:
    """Each scenario with its ratio, what the ratio is of, its target and whether it is met."""
    judged: dict[str, Any] = {}
    for name in ("job", "page", "worker"):
        if name not in results:
            continue
        found = results[name]
        ratio = found["service"]["cpu_per_op_us"] / found["baseline"]["cpu_per_op_us"]
        met = ratio <= TARGETS[name] and not found["service"]["failures"]
        reference = ("the bare endpoint's CPU per request" if name != "worker"
                     else "direct repository calls' CPU per lifecycle")
        entry = {**found, "ratio": round(ratio, 2), "ratio_of": f"API CPU per op over {reference}",
                 "target": f"<= {TARGETS[name]}x"}
        if name == "page":
            trips = found.get("round_trips", {})
            constant = len(set(trips.values())) == 1
            entry["round_trips_constant"] = constant
            entry["target"] += ", round trips constant in the page size"
            met = met and constant
        entry["met"] = met
        judged[name] = entry
    if "subscriptions" in results:
        runs = results["subscriptions"]
        for count, run in runs.items():
            one_stream = (run["open_cursors_subscribed"] is not None
                          and run["open_cursors_subscribed"] == run["open_cursors_idle"])
            run["one_change_stream"] = one_stream
            checks = [run["delivered"] == run["subscribers"],
                      run["memory_per_subscriber_kb"] <= MEMORY_PER_SUBSCRIBER_KB, one_stream]
            if int(count) <= JUDGED_SUBSCRIBERS:
                checks.append(run["p99_ms"] <= DELIVERY_P99_MS)
            run["met"] = all(checks)
        first = runs[min(runs, key=int)]
        judged["subscriptions"] = {
            "runs": runs,
            "ratio": round(first["p99_ms"] / DELIVERY_P99_MS, 2),
            "ratio_of": f"p99 delivery at {first['subscribers']} subscribers over the "
                        f"{DELIVERY_P99_MS:.0f} ms budget",
            "target": f"all delivered, p99 <= {DELIVERY_P99_MS:.0f} ms at "
                      f"{JUDGED_SUBSCRIBERS}, <= {MEMORY_PER_SUBSCRIBER_KB:.0f} KB per "
                      "subscriber, one change stream",
            "met": all(run["met"] for run in runs.values()),
        }
    if "growth" in results:
        found = results["growth"]
        ratio = found["large"]["p50_ms"] / found["small"]["p50_ms"]
        judged["growth"] = {
            **found,
            "ratio": round(ratio, 2),
            "ratio_of": f"p50 latency with {found['large']['jobs']:,} jobs over "
                        f"{found['small']['jobs']:,}",
            "target": f"<= {GROWTH_RATIO}x on a real MongoDB",
            "met": (ratio <= GROWTH_RATIO) if real_mongodb else None,
        }
    return judged


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "no verdict (embedded)"}[met]


def _row(cells: list[Any]) -> str:
    widths = [30, 12, 7, 9, 8, 8, 8, 8, 6]
    parts: list[str] = []
    for cell, width in zip(cells, widths, strict=False):
        text = "" if cell is None else str(cell)
        parts.append(text.ljust(width) if len(parts) < 2 else text.rjust(width))
    parts.extend(str(cell) for cell in cells[len(widths):])
    return " ".join(parts).rstrip()


def _variant(label: str, run: dict[str, Any], unit: str) -> list[Any]:
    return [label, run.get(unit), f"{run['cpu_per_op_us']:.0f}",
            f"{run['throughput_per_s']:.0f}", f"{run['p50_ms']:.1f}", f"{run['p95_ms']:.1f}",
            f"{run['p99_ms']:.1f}"]


def render_table(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [f"jobgraph bench ({meta['mode']}, {meta['database']}, {meta['cpus']} CPUs, "
             f"Python {meta['python']}): API CPU per operation against its baseline",
             _row(["scenario", "variant", "ops", "CPU/op us", "ops/s", "p50 ms", "p95 ms",
                   "p99 ms", "ratio", "target / verdict"])]
    lines.append("-" * len(lines[-1]))
    scenarios = report["scenarios"]
    for name, baseline_label in (("job", "bare"), ("page", "bare"), ("worker", "direct")):
        if name not in scenarios:
            continue
        found = scenarios[name]
        clients = found.get("clients") or found.get("workers")
        unit = "lifecycles" if name == "worker" else "requests"
        lines.append(_row([f"{LABELS[name]} ({clients} clients)",
                           *_variant(baseline_label, found["baseline"], unit)]))
        note = ""
        if name == "page":
            trips = found.get("round_trips", {})
            note = " round trips " + "/".join(str(trips[k]) for k in trips) + \
                " at " + "/".join(trips)
        lines.append(_row(["", *_variant("graphql", found["service"], unit),
                           f"{found['ratio']:.2f}x",
                           f"{found['target'].split(',')[0]} {_verdict(found['met'])}{note}"]))
    if "subscriptions" in scenarios:
        found = scenarios["subscriptions"]
        for count, run in found["runs"].items():
            lines.append(_row([
                f"{LABELS['subscriptions']} {int(count):,}", "websocket",
                f"{run['delivered']}/{run['subscribers']}", "", "",
                f"{run['p50_ms']:.1f}", f"{run['p95_ms']:.1f}", f"{run['p99_ms']:.1f}",
                f"{run['p99_ms'] / DELIVERY_P99_MS:.2f}",
                f"{run['memory_per_subscriber_kb']:.1f} KB/sub, cursors "
                f"{run['open_cursors_idle']}->{run['open_cursors_subscribed']}, "
                f"{_verdict(run['met'])}"]))
    if "growth" in scenarios:
        found = scenarios["growth"]
        for size in ("small", "large"):
            run = found[size]
            cells = [f"{LABELS['growth']}" if size == "small" else "",
                     *_variant(f"{run['jobs']:,} jobs", run, "requests")]
            if size == "large":
                plan = found.get("plan", {})
                cells += [f"{found['ratio']:.2f}x",
                          f"{found['target']}: {_verdict(found['met'])}"
                          + (f"; blocking sort: {plan['blocking_sort']}"
                             if "blocking_sort" in plan else "")]
            lines.append(_row(cells))
    server = report.get("server", {})
    if server:
        lines.append(f"server peak RSS: {server.get('peak_rss_kb', 0) / 1024:.0f} MiB")
    return "\n".join(lines)
