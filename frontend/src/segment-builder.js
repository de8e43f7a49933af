// The segment builder: one Alpine component holding the definition JSON as state
// (shared/specs/segment-rules.md). The tree renders recursively: each group's x-for
// injects the node template (#sb-node) with x-html, which Alpine initialises in place.
// Every change is sent, debounced, to the server's preview, which parses and compiles it
// exactly as a save would and answers with the count, a sample, the impact against the
// saved version, hygiene warnings and the parse errors by path — placed at their nodes here.

import Alpine from "alpinejs";

const OP_LABELS = {
  eq: "is", neq: "is not", in: "is one of", not_in: "is none of", contains: "contains",
  not_contains: "does not contain", starts_with: "starts with", ends_with: "ends with", gt: "greater than",
  gte: "at least", lt: "less than", lte: "at most", between: "between", is_set: "is set",
  is_not_set: "is not set", within_last: "within the last", more_than_ago: "more than … ago",
  has_any: "has any of", has_all: "has all of", has_none: "has none of", before: "before", after: "after",
  anniversary_within: "anniversary within the next",
};
const DATE_OP_LABELS = { gt: "after", gte: "on or after", lt: "before", lte: "on or before", eq: "on", neq: "not on" };
const MEASURE_OPS = ["gte", "gt", "eq", "neq", "lte", "lt", "between", "in", "not_in"];
const OCCURRED_OPS = ["within_last", "more_than_ago", "before", "after"];
const MEASURES = [
  ["count", "Count of events"], ["distinct_days", "Distinct days"], ["first_occurred", "First time"],
  ["last_occurred", "Last time"], ["aggregate", "Sum / average of a property"],
  ["share", "Share at certain times"],
];
// ISO weekdays, as `when.days` holds them (1 = Monday … 7 = Sunday).
const WEEKDAYS = [[1, "Mon"], [2, "Tue"], [3, "Wed"], [4, "Thu"], [5, "Fri"], [6, "Sat"], [7, "Sun"]];
const HOURS = Array.from({ length: 25 }, (_, h) => h);
const DAY_UNITS = [["d", "days"], ["w", "weeks"]];
const TYPES = [
  ["trait", "Trait"], ["event", "Event"], ["sequence", "Sequence"], ["metric", "Metric (RFM, LTV…)"],
  ["survey", "Survey answer"], ["segment", "Segment membership"], ["consent", "Consent"],
];
const WHERE_OPS = ["eq", "neq", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "is_set", "is_not_set"];
const UNITS = [["m", "minutes"], ["h", "hours"], ["d", "days"], ["w", "weeks"]];
const NO_VALUE = ["is_set", "is_not_set"];
const LIST_OPS = ["in", "not_in", "has_any", "has_all", "has_none"];

let counter = 0;
const newId = () => `n${++counter}`;

function withIds(node) {
  if (node && typeof node === "object" && !Array.isArray(node)) {
    const copy = { ...node };
    if (Array.isArray(copy.conditions)) copy.conditions = copy.conditions.map(withIds);
    if (isNode(copy)) copy._id = newId();
    return copy;
  }
  return node;
}
const isNode = (n) => n && typeof n === "object" && ("type" in n || "conditions" in n);
const isGroup = (n) => n && typeof n === "object" && !("type" in n);

function clean(value) {
  if (Array.isArray(value)) return value.map(clean);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) {
      if (k.startsWith("_")) continue;
      if (k === "negate" && v === false) continue;
      if (k === "where" && Array.isArray(v) && v.length === 0) continue;
      if ((k === "window" || k === "question" || k === "when") && (v === null || v === "")) continue;
      out[k] = clean(v);
    }
    return out;
  }
  return value;
}

export function parseDuration(text) {
  const m = /^(\d+)([mhdw])$/.exec(text || "");
  return m ? { n: Number(m[1]), unit: m[2] } : { n: "", unit: "d" };
}

export function segmentBuilder(config) {
  return {
    catalogue: config.catalogue,
    def: withIds(config.definition),
    kind: config.kind,
    segmentKey: config.segmentKey || "",
    previewUrl: config.previewUrl,
    valuesUrl: config.valuesUrl,
    errors: [],
    errorsById: {},
    rootErrors: [],
    suggestions: {},
    jsonOpen: false,
    jsonDraft: "",
    jsonError: "",
    loading: false,
    previewed: false,
    timer: null,
    inflight: null,
    keyTouched: false,
    TYPES, MEASURES, UNITS, DAY_UNITS, OCCURRED_OPS, WHERE_OPS, WEEKDAYS, HOURS, parseDuration,

    init() {
      this.setErrors(config.errors || []);
      Alpine.effect(() => {
        const text = JSON.stringify(clean(this.def));
        if (this.kind !== "dynamic") return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.preview(text), 400);
      });
    },

    // ------------------------------------------------------------ serialisation
    get definitionText() { return JSON.stringify(clean(this.def)); },
    get prettyJson() { return JSON.stringify(clean(this.def), null, 2); },
    openJson() { this.jsonDraft = this.prettyJson; this.jsonError = ""; this.jsonOpen = true; },
    applyJson() {
      let parsed;
      try { parsed = JSON.parse(this.jsonDraft); } catch (e) { this.jsonError = `Not valid JSON: ${e.message}`; return; }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) { this.jsonError = "A definition is a JSON object."; return; }
      if (!Array.isArray(parsed.conditions)) parsed.conditions = [];
      this.jsonError = "";
      this.def = withIds(parsed);
      this.jsonOpen = false;
    },

    // ------------------------------------------------------------ preview + errors
    // An estimate first (a hash-sample of the customers: at once), then the exact count; a
    // newer edit aborts both. The server marks an estimate with data-exact-pending.
    async preview(text) {
      if (this.inflight) this.inflight.abort();
      const controller = new AbortController();
      this.inflight = controller;
      this.loading = true;
      try {
        const root = await this.fetchPreview(text, "estimate", controller);
        if (root && root.querySelector("[data-exact-pending]")) await this.fetchPreview(text, "exact", controller);
        this.previewed = true;
      } catch (e) {
        if (e.name !== "AbortError") this.$refs.preview.innerHTML = '<p class="alert-error">The preview could not be loaded. Check your connection; saving still validates the rule.</p>';
      } finally {
        if (this.inflight === controller) { this.inflight = null; this.loading = false; }
      }
    },

    async fetchPreview(text, accuracy, controller) {
      const token = document.querySelector('meta[name="csrf-token"]')?.content || "";
      const response = await fetch(this.previewUrl, {
        method: "POST", signal: controller.signal,
        headers: { "Content-Type": "application/json", "X-CSRFToken": token, "HX-Request": "true" },
        body: JSON.stringify({ definition: JSON.parse(text), segment: this.segmentKey || null, accuracy }),
      });
      const html = await response.text();
      if (controller.signal.aborted) return null;
      const panel = this.$refs.preview;
      panel.innerHTML = html;
      const root = panel.querySelector("[data-errors]");
      this.setErrors(root ? JSON.parse(root.dataset.errors || "[]") : []);
      return root;
    },

    setErrors(errors) {
      this.errors = errors;
      const paths = {};
      const walk = (node, path) => {
        paths[path] = node._id;
        (node.conditions || []).forEach((c, i) => walk(c, `${path ? path + "." : ""}conditions[${i}]`));
      };
      walk(this.def, "");
      const byId = {};
      const root = [];
      for (const e of errors) {
        const path = (e.path || "").replace(/^definition\.?/, "");
        const m = /^((?:conditions\[\d+\])(?:\.conditions\[\d+\])*)(?:\.(.*))?$/.exec(path);
        const nodePath = m ? m[1] : "";
        const id = paths[nodePath];
        const entry = { ...e, field: m ? m[2] || "" : path };
        if (id && nodePath) (byId[id] = byId[id] || []).push(entry);
        else root.push(entry);
      }
      this.errorsById = byId;
      this.rootErrors = root;
    },
    nodeErrors(node) { return this.errorsById[node._id] || []; },
    fieldError(node, field) {
      return this.nodeErrors(node).filter((e) => e.field === field || e.field.startsWith(field + ".") || e.field.startsWith(field + "["));
    },

    // ------------------------------------------------------------ tree edits
    tpl(id) { return document.getElementById(id).innerHTML; },
    isGroup,
    blank(type) {
      const first = (list) => (list.length ? list[0] : null);
      switch (type) {
        case "trait": { const t = first(this.catalogue.traits); return { type, field: t?.field || "country", op: t?.type === "list" ? "has_any" : t?.type === "boolean" ? "eq" : t?.type === "datetime" ? "within_last" : t?.type === "number" ? "gte" : "eq", value: t?.type === "list" ? [] : t?.type === "boolean" ? true : t?.type === "datetime" ? "30d" : "" }; }
        case "event": return { type, event: first(this.catalogue.events)?.name || "", count: { op: "gte", value: 1 }, window: { last: "30d" }, where: [] };
        case "sequence": { const e = this.catalogue.events; return { type, steps: [{ event: e[0]?.name || "" }, { event: e[1]?.name || e[0]?.name || "" }], within: "7d" }; }
        case "metric": return { type, metric: "rfm_segment", op: "in", value: ["champions"] };
        case "survey": return { type, survey: "nps", measure: "latest", op: "gte", value: 9 };
        case "segment": return { type, segment: first(this.catalogue.segments)?.key || "", op: "in" };
        case "consent": return { type, channel: "email", granted: true };
        default: return { match: "any", conditions: [] };
      }
    },
    add(group, type) { group.conditions.push(withIds(this.blank(type))); },
    addGroup(group) {
      group.conditions.push(withIds({ match: "any", conditions: [this.blank("trait")] }));
    },
    remove(group, index) { group.conditions.splice(index, 1); },
    move(group, index, delta) {
      const to = index + delta;
      if (to < 0 || to >= group.conditions.length) return;
      const [node] = group.conditions.splice(index, 1);
      group.conditions.splice(to, 0, node);
    },
    wrap(group, index) {
      // Nest a condition into a new ANY group, so alternatives can be added beside it.
      const [node] = group.conditions.splice(index, 1, null);
      group.conditions.splice(index, 1, withIds({ match: "any", conditions: [] }));
      group.conditions[index].conditions.push(node);
    },
    depthOf(node) {
      let found = 0;
      const walk = (n, d) => { if (n === node || n._id === node._id) found = d; (n.conditions || []).forEach((c) => walk(c, d + 1)); };
      walk(this.def, 1);
      return found;
    },
    changeType(node, type) {
      const fresh = this.blank(type);
      for (const k of Object.keys(node)) if (k !== "_id" && k !== "negate") delete node[k];
      Object.assign(node, fresh);
    },

    // ------------------------------------------------------------ traits and values
    trait(field) { return this.catalogue.traits.find((t) => t.field === field); },
    traitGroups() {
      const groups = {};
      for (const t of this.catalogue.traits) (groups[t.category] = groups[t.category] || []).push(t);
      return Object.entries(this.catalogue.categories).filter(([k]) => groups[k]).map(([k, label]) => ({ key: k, label, traits: groups[k] }));
    },
    metricType(name) { return this.catalogue.metrics.find((m) => m.metric === name)?.type || "number"; },
    opsFor(type) { return this.catalogue.ops[type] || this.catalogue.ops.string; },
    opLabel(op, type) { return (type === "datetime" && DATE_OP_LABELS[op]) || OP_LABELS[op] || op; },
    measureOps: () => MEASURE_OPS,
    valueKind(op, type) {
      if (NO_VALUE.includes(op)) return "none";
      if (op === "within_last" || op === "more_than_ago") return "duration";
      if (op === "anniversary_within") return "days";
      if (op === "between") return type === "datetime" ? "date-range" : "range";
      if (LIST_OPS.includes(op)) return "list";
      if (type === "datetime" || op === "before" || op === "after") return "date";
      if (type === "boolean") return "boolean";
      if (type === "number") return "number";
      return "text";
    },
    // Keep the value's shape fitting the operator when the operator or field changes.
    fitValue(cmp, type) {
      const kind = this.valueKind(cmp.op, type);
      const v = cmp.value;
      if (kind === "none") delete cmp.value;
      else if (kind === "list") cmp.value = Array.isArray(v) ? v : v === undefined || v === "" ? [] : [v];
      else if (kind === "range" || kind === "date-range") cmp.value = Array.isArray(v) && v.length === 2 ? v : ["", ""];
      else if (kind === "duration") cmp.value = typeof v === "string" && parseDuration(v).n ? v : "30d";
      else if (kind === "days") cmp.value = typeof v === "string" && /^\d+[dw]$/.test(v) ? v : "7d";
      else if (kind === "boolean") cmp.value = typeof v === "boolean" ? v : true;
      else if (kind === "number") cmp.value = typeof v === "number" ? v : Array.isArray(v) ? Number(v[0]) || 0 : Number(v) || 0;
      else if (kind === "date") cmp.value = typeof v === "string" && /^\d{4}-\d\d-\d\d/.test(v) ? v : "";
      else cmp.value = Array.isArray(v) ? String(v[0] ?? "") : typeof v === "string" ? v : "";
    },
    onTraitChange(node) {
      const t = this.trait(node.field);
      const ops = this.opsFor(t?.type);
      if (!ops.includes(node.op)) node.op = ops.includes("eq") ? "eq" : ops[0];
      this.fitValue(node, t?.type);
    },
    setDuration(cmp, key, n, unit) { cmp[key] = n ? `${n}${unit}` : ""; },
    number(v) { return v === "" || v === null || Number.isNaN(Number(v)) ? v : Number(v); },
    addChip(cmp, event, numeric) {
      const text = event.target.value.trim();
      if (!text) return;
      const value = numeric ? Number(text) : text;
      if (!cmp.value.includes(value)) cmp.value.push(value);
      event.target.value = "";
    },
    async suggest(node, field, q) {
      if (!field) return;
      const key = `${node._id}:${field}`;
      try {
        const r = await fetch(`${this.valuesUrl}?field=${encodeURIComponent(field)}&q=${encodeURIComponent(q || "")}`, { headers: { Accept: "application/json" } });
        if (r.ok) this.suggestions[key] = (await r.json()).values;
      } catch (e) { /* typeahead is a convenience */ }
    },
    suggestionsFor(node, field) { return this.suggestions[`${node._id}:${field}`] || []; },

    // ------------------------------------------------------------ events
    eventProps(name) {
      // Any event ("*"): the properties of every known event.
      const events = name === "*" ? this.catalogue.events : this.catalogue.events.filter((e) => e.name === name);
      return [...new Set(events.flatMap((e) => Object.keys(e.properties || {})))];
    },
    measureOf(node) { return MEASURES.map(([k]) => k).find((k) => k in node) || "count"; },
    setMeasure(node, kind) {
      for (const [k] of MEASURES) delete node[k];
      if (kind === "aggregate") node.aggregate = { fn: "sum", property: this.eventProps(node.event)[0] || "amount", op: "gte", value: 1 };
      else if (kind === "first_occurred" || kind === "last_occurred") node[kind] = { op: "within_last", value: "30d" };
      else if (kind === "share") {
        // A share is the part of the events at the `when` times: it needs them.
        if (!node.when) node.when = { days: [6, 7] };
        node.share = { op: "gte", value: 0.8 };
      } else node[kind] = { op: "gte", value: 1 };
    },

    // ------------------------------------------------------------ time of week (`when`)
    setWhen(node, on) {
      if (on) node.when = { days: [6, 7] };
      else {
        node.when = null;
        if ("share" in node) this.setMeasure(node, "count");
      }
    },
    hasDay(node, day) { return (node.when?.days || []).includes(day); },
    toggleDay(node, day) {
      const days = new Set(node.when.days || []);
      if (days.has(day)) days.delete(day); else days.add(day);
      if (days.size) node.when.days = [...days].sort((a, b) => a - b);
      else delete node.when.days;
    },
    setHours(node, on) {
      if (on) node.when.hours = [18, 24];
      else delete node.when.hours;
    },
    setHour(node, index, value) { node.when.hours[index] = Number(value); },
    windowKind(node) { return !node.window ? "all" : "last" in node.window ? "last" : "range"; },
    setWindow(node, kind) {
      if (kind === "all") node.window = null;
      else if (kind === "last") node.window = { last: "30d" };
      else node.window = { from: "", to: "" };
    },
    addWhere(node) {
      if (!node.where) node.where = [];
      node.where.push({ property: this.eventProps(node.event)[0] || "", op: "eq", value: "" });
    },
    whereType(filter) { return typeof filter.value === "number" ? "number" : typeof filter.value === "boolean" ? "boolean" : "string"; },
    surveyQuestions(key) { return this.catalogue.surveys.find((s) => s.key === key)?.questions || []; },
  };
}
