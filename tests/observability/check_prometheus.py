#!/usr/bin/python3
"""Checks the Grafana dashboards and the Prometheus rules (used by observability_test.sh).

  check_prometheus.py static <dashboards dir>
      The dashboards' structure: valid JSON, unique uids, a `datasource` variable of type
      datasource (prometheus) that every panel and target uses, panels of type timeseries or stat
      (rows aside) with unique ids, every target with a PromQL `expr` that selects
      job="order_platform" and uses $__rate_interval or $__range for every range (no fixed
      windows, which break at other scrape intervals).

  check_prometheus.py live <prometheus base url> <dashboards dir> <not before (unix time)>
      Waits until Prometheus has scraped the server and evaluated every rule group 3 times after
      <not before> (the end of the load), then evaluates through the HTTP API (/api/v1/query):
        - every dashboard panel query, with Grafana's variables replaced: $__rate_interval -> 2m
          (covers the whole load; Grafana would use 4 scrape intervals at least), $__range -> 5m,
          $__interval -> 15s, $instance -> .* (the "All" value);
        - every template variable query (label_values(<selector>, <label>): the selector must
          return series carrying <label>);
        - every rule Prometheus loaded (/api/v1/rules): recording rules as written and by their
          recorded name; alerting rules with every comparison operator turned into its `bool`
          form (`x > 0.05` -> `x > bool 0.05`, `up == 0` -> `up == bool 0`), so that the
          expression returns one 0/1 sample per series it compares instead of only those that
          cross the threshold. "No series" then means a metric name or label matcher that matches
          nothing — the bug this test is after — not a threshold that is rightly not crossed.
      Fails if any query errors or returns no series, or any rule's health is not "ok". Also
      checks, end to end, that the load made OrderPlatformWorkflowsNeedAttention and
      OrderPlatformCompensationFailing active (pending or firing) and left
      OrderPlatformTargetDown inactive.
"""
import json
import re
import sys
import time
import urllib.parse
import urllib.request

SUBSTITUTIONS = [
    ("${__rate_interval}", "2m"), ("$__rate_interval", "2m"),
    ("${__range}", "5m"), ("$__range", "5m"),
    ("${__interval}", "15s"), ("$__interval", "15s"),
    ("${instance}", ".*"), ("$instance", ".*"),
]
PANEL_TYPES = {"timeseries", "stat"}
MUST_BE_ACTIVE = ("OrderPlatformWorkflowsNeedAttention", "OrderPlatformCompensationFailing")
MUST_BE_INACTIVE = ("OrderPlatformTargetDown",)

errors = []


def error(msg):
    errors.append(msg)
    print(f"  FAIL {msg}", flush=True)


def load_dashboards(directory):
    import glob
    import os
    files = sorted(glob.glob(os.path.join(directory, "*.json")))
    if not files:
        error(f"no dashboards in {directory}")
    dashboards = []
    for path in files:
        try:
            with open(path) as f:
                dashboards.append((os.path.basename(path), json.load(f)))
        except ValueError as e:
            error(f"{path}: not JSON: {e}")
    return dashboards


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        for inner in panel.get("panels", []):  # Collapsed rows hold their panels.
            yield inner


def substitute(expr):
    for variable, value in SUBSTITUTIONS:
        expr = expr.replace(variable, value)
    if "$" in expr:
        raise ValueError(f"unsubstituted variable in {expr}")
    return expr


def check_static(directory):
    uids = {}
    for name, d in load_dashboards(directory):
        where = name
        uid = d.get("uid")
        if not uid:
            error(f"{where}: no uid")
        elif uid in uids:
            error(f"{where}: uid {uid} also used by {uids[uid]}")
        uids[uid] = name
        if not d.get("title"):
            error(f"{where}: no title")
        if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
            error(f"{where}: schemaVersion {d.get('schemaVersion')} (want 36 or later)")
        variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
        ds = variables.get("datasource")
        if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
            error(f"{where}: no `datasource` variable of type datasource (prometheus)")
        ids = set()
        count = 0
        for panel in panels_of(d):
            title = panel.get("title", "?")
            pw = f"{where}: panel {panel.get('id')} '{title}'"
            if panel.get("id") in ids:
                error(f"{pw}: duplicate id")
            ids.add(panel.get("id"))
            if "gridPos" not in panel:
                error(f"{pw}: no gridPos")
            if panel.get("type") == "row":
                continue
            count += 1
            if panel.get("type") not in PANEL_TYPES:
                error(f"{pw}: type {panel.get('type')} (want one of {sorted(PANEL_TYPES)})")
            if panel.get("datasource", {}).get("uid") != "${datasource}":
                error(f"{pw}: datasource is not ${{datasource}}")
            targets = panel.get("targets") or []
            if not targets:
                error(f"{pw}: no targets")
            refs = set()
            for t in targets:
                expr = t.get("expr", "")
                if not expr.strip():
                    error(f"{pw}: target {t.get('refId')} has no expr")
                    continue
                if t.get("refId") in refs:
                    error(f"{pw}: duplicate refId {t.get('refId')}")
                refs.add(t.get("refId"))
                if t.get("datasource", {}).get("uid", "${datasource}") != "${datasource}":
                    error(f"{pw}: target {t.get('refId')} datasource is not ${{datasource}}")
                if 'job="order_platform"' not in expr:
                    error(f"{pw}: expr does not select job=\"order_platform\": {expr}")
                for window in re.findall(r"\[([^\]]*)\]", expr):
                    if window not in ("$__rate_interval", "$__range"):
                        error(f"{pw}: fixed range [{window}] (use $__rate_interval or "
                              f"$__range): {expr}")
                try:
                    substitute(expr)
                except ValueError as e:
                    error(f"{pw}: {e}")
        if count == 0:
            error(f"{where}: no panels")
        print(f"  {where}: uid {uid}, {count} panels", flush=True)


# ---- live ---------------------------------------------------------------------------------------

def api(base, path, **params):
    url = f"{base}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON.
        try:
            return json.load(e)
        except ValueError:
            return {"status": "error", "error": f"HTTP {e.code}"}


def query(base, expr):
    return api(base, "/api/v1/query", query=expr, time=f"{time.time():.3f}")


def series_count(result):
    data = result.get("data", {})
    if data.get("resultType") in ("scalar", "string"):
        return 1
    return len(data.get("result", []))


def to_bool_comparisons(expr):
    """`a > 1` -> `a > bool 1` for every comparison operator outside {...}, [...] and strings."""
    out = []
    i = 0
    depth_brace = depth_bracket = 0
    quote = None
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\":
                out.append(expr[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c == "{":
            depth_brace += 1
        elif c == "}":
            depth_brace -= 1
        elif c == "[":
            depth_bracket += 1
        elif c == "]":
            depth_bracket -= 1
        elif depth_brace == 0 and depth_bracket == 0:
            op = None
            for candidate in ("==", "!=", ">=", "<=", ">", "<"):
                if expr.startswith(candidate, i):
                    op = candidate
                    break
            if op:
                out.append(op)
                i += len(op)
                if not re.match(r"\s*bool\b", expr[i:]):
                    out.append(" bool")
                continue
        out.append(c)
        i += 1
    return "".join(out)


def wait_until_fresh(base, not_before, deadline):
    """Waits until Prometheus has scraped the server and evaluated every rule group more than 3 s
    (3 scrape and evaluation intervals) after not_before: a series that first appeared at the end
    of the load then has the two samples rate() needs."""
    not_before += 3
    while True:
        fresh = False
        result = query(base, 'timestamp(up{job="order_platform"} == 1)')
        samples = result.get("data", {}).get("result", [])
        if samples and all(float(s["value"][1]) > not_before for s in samples):
            groups = api(base, "/api/v1/rules").get("data", {}).get("groups", [])
            stale = [g["name"] for g in groups
                     if g.get("lastEvaluation", "").startswith("0001")
                     or _parse_time(g.get("lastEvaluation", "")) <= not_before]
            fresh = bool(groups) and not stale
        if fresh:
            return True
        if time.time() > deadline:
            error("Prometheus did not scrape the server and evaluate every rule group after the "
                  "load in time")
            return False
        time.sleep(0.5)


def _parse_time(text):
    # RFC 3339 with nanoseconds, e.g. 2024-05-01T12:00:00.123456789Z or +00:00.
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        return 0.0
    import calendar
    y, mo, d, h, mi, s, frac, tz = m.groups()
    t = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s)))
    t += float("0" + frac) if frac else 0.0
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def check_live(base, directory, not_before):
    deadline = time.time() + 60
    if not wait_until_fresh(base, not_before, deadline):
        return

    # Canaries: the checker itself must tell an empty result from a non-empty one.
    if series_count(query(base, 'up{job="order_platform", instance="no-such-instance"}')) != 0:
        error("canary: a selector that matches nothing returned series")
    if series_count(query(base, to_bool_comparisons('up{job="order_platform"} == 0'))) == 0:
        error("canary: the bool form of `up == 0` returned no series")

    panel_queries = 0
    variable_queries = 0
    for name, d in load_dashboards(directory):
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") != "query":
                continue
            q = v.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)\s*", q)
            if not m:
                error(f"{name}: variable {v.get('name')}: unsupported query {q!r}")
                continue
            variable_queries += 1
            selector, label = m.groups()
            result = query(base, selector)
            if result.get("status") != "success":
                error(f"{name}: variable {v.get('name')}: {selector}: {result.get('error')}")
            elif not any(label in s.get("metric", {}) for s in result["data"]["result"]):
                error(f"{name}: variable {v.get('name')}: {selector} has no series with {label}")
        for panel in panels_of(d):
            for t in panel.get("targets") or []:
                if not t.get("expr"):
                    continue
                panel_queries += 1
                expr = substitute(t["expr"])
                result = query(base, expr)
                where = f"{name}: '{panel.get('title')}' {t.get('refId')}"
                if result.get("status") != "success":
                    error(f"{where}: {result.get('errorType')}: {result.get('error')}\n"
                          f"       {expr}")
                elif series_count(result) == 0:
                    error(f"{where}: no series\n       {expr}")
    print(f"  dashboards: {panel_queries} panel queries and {variable_queries} variable queries "
          "evaluated", flush=True)

    groups = api(base, "/api/v1/rules").get("data", {}).get("groups", [])
    recording = alerting = 0
    states = {}
    for g in groups:
        for rule in g.get("rules", []):
            name = rule.get("name")
            where = f"rule group {g['name']}: {rule['type']} {name}"
            if rule.get("health") != "ok":
                error(f"{where}: health {rule.get('health')}: {rule.get('lastError')}")
            if rule["type"] == "recording":
                recording += 1
                for expr in (rule["query"], name):
                    result = query(base, expr)
                    if result.get("status") != "success":
                        error(f"{where}: {result.get('error')}\n       {expr}")
                    elif series_count(result) == 0:
                        error(f"{where}: no series\n       {expr}")
            else:
                alerting += 1
                expr = to_bool_comparisons(rule["query"])
                result = query(base, expr)
                if result.get("status") != "success":
                    error(f"{where}: {result.get('error')}\n       {expr}")
                elif series_count(result) == 0:
                    error(f"{where}: no series\n       {expr}")
                if rule.get("state") != "inactive" or name not in states:
                    states[name] = rule.get("state")
    if not groups:
        error("Prometheus loaded no rule groups")
    print(f"  rules: {recording} recording and {alerting} alerting rule expressions evaluated",
          flush=True)
    for name in MUST_BE_ACTIVE:
        if states.get(name) not in ("pending", "firing"):
            error(f"alert {name} is {states.get(name)} after the load (want pending or firing)")
    for name in MUST_BE_INACTIVE:
        if states.get(name) != "inactive":
            error(f"alert {name} is {states.get(name)} (want inactive)")
    print("  alert states: " + ", ".join(f"{k}={v}" for k, v in sorted(states.items())),
          flush=True)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "static":
        check_static(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "live":
        check_live(sys.argv[2].rstrip("/"), sys.argv[3], float(sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if errors:
        print(f"check_prometheus.py: {len(errors)} problem(s)", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
