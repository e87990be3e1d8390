"""The figures issue 13 set for 2 cores, beside what this run measured: met or not, row by row.

Computed from results.json, so the table can never disagree with the tables above it.
"""

from bench.pipeline import scale_out, versus_bare

RPC_RATIO = 0.95  # every RPC and event row against its bare-nameko baseline
PIPELINE_RATIO = 0.7  # the project's pipeline on PostgreSQL against the bare one
PIPELINE_RATE = 100  # messages/s, project, PostgreSQL, 2 time_consuming instances
SCALE_OUT_EFFICIENCY = 0.85  # at 4 instances, I/O-bound
RSS_RATIO = 1.5  # per instance, against bare nameko

# The project's rows, except tracing: an option, whose baseline is the receiver with tracing off.
# (The baselines' own rows, bare nameko and raw kombu, are what the targets compare against.)
PROJECT, NOT_TARGETED = "(project)", "tracing on"
BARE_ECHO = "bare nameko echo"
BARE_DISPATCHER = "nameko EventDispatcher"  # the events rows' baseline


Row = tuple[str, str, str, bool]  # what, measured, target, met


def ratio(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}x"


def percent(value: float, digits: int = 0) -> str:
    return f"{100 * value:.{digits}f}%"


def per_second(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def measured(value: float, target: float, shown) -> str:
    """`value` as `shown` writes it, with a digit more where it would read the same as a target it misses
    or meets only unrounded (0.948 is not 0.95x)."""
    digits = {ratio: 2, percent: 0, per_second: 1}[shown]
    while shown(value, digits) == shown(target, digits) and value != target and digits < 4:
        digits += 1
    return shown(value, digits)


def at_least(what: str, value: float, target: float, shown=ratio) -> Row:
    return (what, measured(value, target, shown), f">= {shown(target)}", value >= target)


def at_most(what: str, value: float, target: float, shown=ratio) -> Row:
    return (what, measured(value, target, shown), f"<= {shown(target)}", value <= target)


def versus_baseline(rpc: dict, label: str, kind: str) -> float:
    """An RPC row's rate against its baseline's: the median of the rounds' paired ratios where the
    results have it (bench/run.py), else (results from before) the ratio of the two medians."""
    r = rpc[label]
    if f"{kind}_vs_baseline" in r:
        return r[f"{kind}_vs_baseline"]
    base = rpc[r["baseline"]] if r["baseline"] else r
    return r[f"{kind}_calls_per_s"] / base[f"{kind}_calls_per_s"]


def events_versus_nameko(events: dict, label: str) -> float:
    """An events row against nameko's dispatcher: paired like the RPC rows' where the results have
    it, else (results from before) the ratio of the two medians."""
    e = events[label]
    return e.get("vs_nameko", e["events_per_s"] / events[BARE_DISPATCHER]["events_per_s"])


def rows(results: dict) -> list[Row]:
    """Every target the results have figures for."""
    found = []
    rpc = results.get("rpc", {})
    for label in rpc:
        if PROJECT not in label or NOT_TARGETED in label:
            continue
        for kind in ("sequential", "pipelined"):
            found.append(at_least(f"{label}, {kind}", versus_baseline(rpc, label, kind), RPC_RATIO))
    events = results.get("events", {})
    for label in events:
        if BARE_DISPATCHER in events and label != BARE_DISPATCHER:
            found.append(at_least(f"events: {label}", events_versus_nameko(events, label), RPC_RATIO))
    summary = results.get("pipeline", {}).get("summary", {})
    cost = {
        (s["implementation"], s["instances"]): s
        for s in summary.values()
        if s["database"] == "PostgreSQL" and not s["webhook_delay"] and not s.get("sslmode")
    }
    for instances in (1, 2):
        project = cost.get(("project", instances))
        if project and (versus := versus_bare(summary, project)) is not None:
            plural = "s" if instances > 1 else ""
            what = f"pipeline, PostgreSQL, {instances} time_consuming{plural}: project vs bare"
            found.append(at_least(what, versus, PIPELINE_RATIO))
    if (project := cost.get(("project", 2))) and (rate := project["median_messages_per_s"]):
        what = "pipeline, PostgreSQL, 2 time_consumings: messages/s"
        found.append(at_least(what, rate, PIPELINE_RATE, per_second))
    for implementation, curve in scale_out(summary).items():
        _, efficiency = curve.get(4, (None, None))
        if efficiency is not None:
            what = f"scale-out efficiency at 4 instances, {implementation} pipeline"
            found.append(at_least(what, efficiency, SCALE_OUT_EFFICIENCY, percent))
    rss = results.get("rss_mib", {})
    if base := rss.get(BARE_ECHO):
        for process in ("receiver_service", "sender_service"):
            if process in rss:
                found.append(at_most(f"RSS: {process} vs {BARE_ECHO}", rss[process] / base, RSS_RATIO))
    return found


def report_targets(results: dict) -> list[str]:
    found = rows(results)
    if not found:
        return []
    lines = ["", "## Against the targets", "", "| figure | measured | target | met |", "|---|---:|---:|---|"]
    for what, shown, target, ok in found:
        lines.append(f"| {what} | {shown} | {target} | {'yes' if ok else 'no'} |")
    met = sum(1 for *_, ok in found if ok)
    return lines + ["", f"{met} of {len(found)} met in this run (issue 13's figures for 2 cores)."]
