"""One chunk of generated customers: who they are (the planted skeleton), their events,
traits, survey answers and consent, as COPY text lines. No database access: chunks are
drawn in a worker thread while the previous one is written."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demo import personas as P
from demo.generator.tables import (
    ASCII, CANCEL, CHURN_QUIET_DAYS, COMMENTS, COMPANY_SUFFIX, COMPANY_WORDS, DAY, FIRST, LAST, LAST_EVENT_GAP, LOGIN,
    MONTH, NULL, PURCHASE, SIGNUP, UPGRADE, WEEK, YEAR, obj, pick, tables, ts_text,
)

CUSTOMER_CHUNK = 20_000  # customers per chunk; part of the determinism (seeds are per chunk)


def skeleton(seed: int, chunk: int, n: int, now_s: int) -> dict[str, np.ndarray]:
    """Who each customer of the chunk is and how long and how much it is active: persona,
    plan, sign-up, churn, billing. Cheap, so the event budget can be split over all
    customers (a first pass) before anything is written."""
    t = tables()
    rng = np.random.default_rng([seed, 1, chunk])
    persona = np.searchsorted(t["persona_cum"], rng.random(n), side="right")
    # The country is drawn here (its own stream), as the weekend persona's events need the local clock.
    country = pick(t["country"], persona, np.random.default_rng([seed, 3, chunk]).random(n))
    a, b = t["signup_age"][persona].T
    signup = now_s - 3600 - (rng.beta(a, b) * (P.HISTORY_DAYS * DAY - 3600)).astype(np.int64)
    plan = pick(t["plan"], persona, rng.random(n))
    paid = plan > 0
    annual = paid & (rng.random(n) < t["annual_share"][persona])
    upgraded = paid & (rng.random(n) < t["upgraded_share"][persona])
    open_end = now_s - LAST_EVENT_GAP
    room = open_end - signup - CHURN_QUIET_DAYS * DAY
    churner = (rng.random(n) < t["churn"][persona]) & (room > 14 * DAY)
    churn_at = signup + (np.maximum(room, 0) * (0.05 + 0.95 * rng.random(n) ** 1.5)).astype(np.int64)
    end = np.where(churner, churn_at, open_end)
    life = np.maximum(end - signup, 1)
    upgrade_at = signup + (np.where(upgraded, rng.random(n) * 0.5, 0.0) * life).astype(np.int64)
    period = np.where(annual, YEAR, MONTH)
    billed = np.where(paid, np.floor((end - upgrade_at) / period).astype(np.int64) + 1, 0)
    mu, sigma = t["rate"][persona].T
    rate = rng.lognormal(mu, sigma)  # random events per active day
    k = t["decay"][persona]
    # churners' rate falls as e^(-k·x) over their life x ∈ [0, 1]: expected events ∝ (1 - e^-k)/k
    expected = rate * life / DAY * np.where(churner, (1 - np.exp(-k)) / k, 1.0)
    cancels = churner & paid & (rng.random(n) < t["cancel_share"][persona])
    fixed = churner + upgraded + billed  # lifecycle events: the last one, the upgrade, invoices
    return {"persona": persona, "country": country, "signup": signup, "plan": plan, "paid": paid, "annual": annual,
            "upgraded": upgraded, "churner": churner, "end": end, "life": life, "upgrade_at": upgrade_at,
            "period": period, "billed": billed, "cancels": cancels, "fixed": fixed,
            "expected": expected}


# ------------------------------------------------------------------ one chunk, as COPY text


def allocate(rng, budget: int, fixed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Split `budget` events over items: the lifecycle events (`fixed`) first, the rest in
    proportion to the expected random activity; when the budget cannot even pay for the
    lifecycle events, those are thinned in proportion instead."""
    total = int(fixed.sum())
    if budget <= total:
        return rng.multinomial(budget, fixed / total) if budget else np.zeros(len(fixed), dtype=np.int64)
    return fixed + rng.multinomial(budget - total, expected / expected.sum())


WEEKEND_START = 4 * DAY + 18 * 3600  # Friday 18:00, from Monday 00:00
WEEKEND_LENGTH = 46 * 3600  # until Sunday 16:00
EPOCH_MONDAY = 4 * DAY  # 1970-01-05, the first Monday after the epoch


def _weekend_moves(t, sk: dict, owner: np.ndarray, stamp: np.ndarray, rng) -> np.ndarray:
    """Moves a persona's `weekend` share of random events into its customers' local
    Friday-evening-to-Sunday-afternoon of the same week (a week earlier or later when that
    falls outside the customer's life), so the pattern is planted, not the event count."""
    moving = rng.random(len(owner)) < t["weekend"][sk["persona"][owner]]
    if not moving.any():
        return stamp
    who = owner[moving]
    offset = t["utc_offset"][sk["country"][who]]
    local = stamp[moving] + offset
    monday = (local - EPOCH_MONDAY) // WEEK * WEEK + EPOCH_MONDAY
    moved = monday + WEEKEND_START + (rng.random(len(who)) * WEEKEND_LENGTH).astype(np.int64) - offset
    start, end = sk["signup"][who] + 1, sk["end"][who]
    moved = np.where(moved > end, moved - WEEK, moved)
    moved = np.where(moved < start, moved + WEEK, moved)
    out = stamp.copy()
    out[moving] = np.clip(moved, start, end)
    return out


def _events(rng, t, sk: dict, budget: int, has_signup: np.ndarray, seats: np.ndarray,
            weekend_rng) -> dict[str, np.ndarray]:
    """The chunk's events: owner (chunk index), name code, epoch seconds, property text."""
    n = len(sk["persona"])
    persona = sk["persona"]
    k = allocate(rng, budget, sk["fixed"].astype(np.int64), sk["expected"])
    # TRICKY: a small budget is spent in this order: the churner's last event, the upgrade,
    # the invoices (evenly thinned), then the random events.
    n_final = np.minimum(sk["churner"].astype(np.int64), k)
    rest = k - n_final
    n_upgrade = np.minimum(sk["upgraded"].astype(np.int64), rest)
    rest -= n_upgrade
    n_invoice = np.minimum(sk["billed"], rest)
    n_random = rest - n_invoice
    idx = np.arange(n)
    parts = []  # (owner, name code, ts, prop code)

    owner = idx[has_signup]
    source = pick(t["signup_source"], persona[owner], rng.random(len(owner)))
    parts.append((owner, np.full(len(owner), SIGNUP), sk["signup"][owner], t["prop_offset"][SIGNUP] + source))

    owner = idx[n_final > 0]
    cancel = sk["cancels"][owner]
    reason = pick(t["cancel_reason"], persona[owner], rng.random(len(owner)))
    method = pick(t["login"], persona[owner], rng.random(len(owner)))
    parts.append((owner, np.where(cancel, CANCEL, LOGIN), sk["end"][owner],
                  np.where(cancel, t["prop_offset"][CANCEL] + sk["plan"][owner] * len(P.CANCEL_REASONS) + reason,
                           t["prop_offset"][LOGIN] + method)))

    owner = idx[n_upgrade > 0]
    parts.append((owner, np.full(len(owner), UPGRADE), sk["upgrade_at"][owner],
                  t["prop_offset"][UPGRADE] + sk["plan"][owner]))

    owner = np.repeat(idx, n_invoice)
    nth = np.arange(len(owner)) - np.repeat(np.cumsum(n_invoice) - n_invoice, n_invoice)
    month = (nth * sk["billed"][owner]) // np.maximum(n_invoice[owner], 1)
    stamp = np.minimum(sk["upgrade_at"][owner] + (month * sk["period"][owner]).astype(np.int64), sk["end"][owner])
    parts.append((owner, np.full(len(owner), PURCHASE), stamp, np.full(len(owner), -1)))
    invoices = len(owner)

    owner = np.repeat(idx, n_random)
    pers = persona[owner]
    u = rng.random(len(owner))
    decay = t["decay"][pers]
    churned = sk["churner"][owner]
    # inverse CDF of a density ∝ e^(-decay·x) on [0, 1] for churners, uniform otherwise
    x = np.where(churned, -np.log1p(-u * (1 - np.exp(-decay))) / decay, u)
    start, life = sk["signup"][owner], sk["life"][owner]
    stamp = np.minimum(start + 1 + (x * (life - 1)).astype(np.int64), sk["end"][owner])
    stamp = _weekend_moves(t, sk, owner, stamp, weekend_rng)
    name = 1 + pick(t["mix"], pers, rng.random(len(owner)))  # RANDOM_EVENTS follow user_signed_up
    cum = t["variant_cum"][pers, name]
    variant = np.minimum((rng.random(len(owner))[:, None] >= cum).sum(axis=1), t["variant_count"][name] - 1)
    prop = np.where(name == PURCHASE, -1, t["prop_offset"][name] + variant)
    parts.append((owner, name, stamp, prop))

    owner, name, stamp, prop = (np.concatenate(c) for c in zip(*parts))
    text = t["props"][np.maximum(prop, 0)]
    # Purchases: invoices of the plan (team plans per seat, annual = 10 months) and one-offs.
    buys = np.flatnonzero(prop < 0)
    who = owner[buys]
    plan = sk["plan"][who]
    is_invoice = np.zeros(len(buys), dtype=bool)
    is_invoice[:invoices] = True  # invoices come first among the purchases (parts order)
    price = t["plan_price"][plan] * np.where(plan == P.PLANS.index("team"), seats[who], 1)
    price = price * np.where(sk["annual"][who], P.ANNUAL_DISCOUNT, 1.0)
    mu, sigma = t["one_off_amount"][persona[who]].T
    one_off = np.maximum(np.round(rng.lognormal(mu, sigma), 2), 1.0)
    amount = np.where(is_invoice, price, one_off)
    plans = t["plans"][plan]
    interval = np.where(sk["annual"][who], "year", "month")
    text[buys] = [
        f'{{"amount": {a:.2f}, "currency": "USD", "kind": "subscription", "plan": "{p}", "interval": "{i}"}}'
        if inv else f'{{"amount": {a:.2f}, "currency": "USD", "kind": "one_off"}}'
        for a, p, i, inv in zip(amount.tolist(), plans.tolist(), interval.tolist(), is_invoice.tolist())
    ]
    # TRICKY: rows go to COPY ordered by (name, timestamp): the (name, timestamp, customer)
    # index then takes each chunk as a few sorted runs instead of random inserts.
    order = np.lexsort((stamp, name))
    return {"owner": owner[order], "name": name[order], "ts": stamp[order], "props": text[order]}


def _customers(rng, t, sk: dict, *, ids: np.ndarray, numbers: np.ndarray, prefix: str, now_s: int,
               last_seen: np.ndarray, email_opt_in: np.ndarray, seats: np.ndarray) -> list[str]:
    """COPY text lines of the chunk's customers (columns as CUSTOMER_COLUMNS)."""
    n = len(ids)
    persona = sk["persona"]
    mean, sd = t["age"][persona].T
    age_days = (np.clip(rng.normal(mean, sd), 18, 75) * 365.25).astype(np.int64)
    birth = np.datetime_as_string(np.datetime64(now_s, "s").astype("datetime64[D]") - age_days, unit="D")
    gender = obj(P.GENDERS)[pick(t["gender"], persona, rng.random(n))]
    income = obj(P.INCOME_BANDS)[pick(t["income"], persona, rng.random(n))]
    occupation = obj(P.OCCUPATIONS)[pick(t["occupation"], persona, rng.random(n))]
    rng.random(n)  # the country's draw moved to the skeleton; kept so the later draws stay as they were
    country = sk["country"]
    place = t["city_offset"][country] + (rng.random(n) * t["city_count"][country]).astype(np.int64)
    mu, sigma, low, high = t["company_size"][persona].T
    size = np.clip(rng.lognormal(mu, sigma), low, high).astype(np.int64)
    revenue = size * t["revenue_per_employee"][persona] * rng.lognormal(0.0, 0.4, n)
    words = rng.integers(0, len(COMPANY_WORDS[0]), (n, 2))
    suffix = np.searchsorted([limit for limit, _ in COMPANY_SUFFIX], size, side="right")
    company = (obj(COMPANY_WORDS[0])[words[:, 0]] + " " + obj(COMPANY_WORDS[1])[words[:, 1]] + " "
               + obj([s for _, s in COMPANY_SUFFIX])[suffix])
    industry = obj(P.INDUSTRIES)[pick(t["industry"], persona, rng.random(n))]
    device = pick(t["device"], persona, rng.random(n))
    desktop_os = obj(P.OSES["desktop"])[pick(t["desktop_os"], persona, rng.random(n))]
    handheld = rng.random(n) < 0.5
    os_name = np.where(device == 0, desktop_os,
                       np.where(device == 1, np.where(handheld, "iOS", "Android"),
                                np.where(handheld, "iPadOS", "Android"))).astype(object)
    bits = rng.random((n, len(P.TECH))) < t["tech"][persona]
    stack = t["stack_text"][bits @ (1 << np.arange(len(P.TECH)))]
    values = obj(P.VALUES_PRIORITY)[pick(t["values"], persona, rng.random(n))]
    risk = obj(P.RISK_ATTITUDES)[pick(t["risk"], persona, rng.random(n))]
    sensitivity = np.clip(np.rint(rng.normal(t["price_sensitivity"][persona], 0.8)), 1, 5).astype(np.int64)
    need = obj(P.PRIMARY_NEEDS)[pick(t["need"], persona, rng.random(n))]
    use_case = obj(P.USE_CASES)[pick(t["use_case"], persona, rng.random(n))]
    cycle = np.where(sk["paid"], np.where(sk["annual"], "annual", "monthly"), "none")
    first = rng.integers(0, len(FIRST), n)
    last = rng.integers(0, len(LAST), n)
    full_name = obj(FIRST)[first] + " " + obj(LAST)[last]
    email_local = obj([f.lower() for f in FIRST])[first] + "." + obj([s.lower().translate(ASCII) for s in LAST])[last]
    seen = np.where(last_seen >= 0, ts_text(np.maximum(last_seen, 0)), "\\N")
    stamp = ts_text(np.array([now_s]))[0]
    columns = zip(
        ids.tolist(), numbers.tolist(), email_local.tolist(), full_name.tolist(), birth.tolist(),
        gender.tolist(), income.tolist(), occupation.tolist(), t["countries"][country].tolist(),
        t["region"][place].tolist(), t["city"][place].tolist(), t["language"][country].tolist(),
        t["timezone"][country].tolist(), company.tolist(), industry.tolist(), size.tolist(), revenue.tolist(),
        obj(P.DEVICES)[device].tolist(), os_name.tolist(), stack.tolist(), t["plans"][sk["plan"]].tolist(),
        ts_text(sk["signup"]).tolist(), seen.tolist(), email_opt_in.tolist(), values.tolist(), risk.tolist(),
        sensitivity.tolist(), need.tolist(), use_case.tolist(), seats.tolist(), cycle.tolist(),
    )
    return [
        f"{cid}\t{prefix}{num:08d}\t{{}}\t{local}{num}@example.com\t{name}\t{bd}\t{g}\t{inc}\t{occ}\t{c}\t{reg}\t"
        f"{city}\t{lang}\t{tz}\t{comp}\t{ind}\t{sz}\t{rev:.2f}\t{dev}\t{osn}\t{stk}\t{plan}\t{su}\t{ls}\t"
        f"{'t' if opt else 'f'}\t"
        f'{{"values_priority": "{v}", "risk_attitude": "{r}", "price_sensitivity": {ps}, '
        f'"primary_need": "{nd}", "use_case": "{uc}", "seats": {st}, "billing_cycle": "{cy}"}}\t{stamp}\t{stamp}'
        for (cid, num, local, name, bd, g, inc, occ, c, reg, city, lang, tz, comp, ind, sz, rev, dev, osn, stk,
             plan, su, ls, opt, v, r, ps, nd, uc, st, cy) in columns
    ]


def _surveys(rng, t, sk: dict, *, ids: np.ndarray, last_seen: np.ndarray, survey_ids: dict[str, int],
             stamp: str) -> list[str]:
    """NPS (0–10) and CSAT (1–5) answers inside each customer's active life; scores by
    persona, lower for churners (they turn into detractors before they leave)."""
    persona, churner = sk["persona"], sk["churner"]
    lines: list[str] = []
    for key, rate, table, low, high, penalty in [
        ("nps", t["nps_rate"], t["nps"], 0, 10, 2.5), ("csat", t["csat_rate"], t["csat"], 1, 5, 1.0),
    ]:
        asked = (rng.random(len(ids)) < rate[persona]) & (last_seen >= 0)
        times = 1 + (rng.random(len(ids)) < 0.3).astype(np.int64) + (rng.random(len(ids)) < 0.1)
        owner = np.repeat(np.flatnonzero(asked), times[asked])
        mean, sd = table[persona[owner]].T
        score = np.clip(np.rint(rng.normal(mean - penalty * churner[owner], sd)), low, high).astype(np.int64)
        start = sk["signup"][owner]
        when = start + (rng.random(len(owner)) * (last_seen[owner] - start)).astype(np.int64)
        band = np.where(score >= (9 if key == "nps" else 5), 2, np.where(score <= (6 if key == "nps" else 2), 0, 1))
        comment = np.array([obj(COMMENTS[b]) for b in ("detractor", "passive", "promoter")])[
            band, rng.integers(0, 4, len(owner))]
        survey = survey_ids[key]
        lines += [f"{cid}\t{survey}\t\t{s}\t{c}\t{w}\t\\N\t{stamp}"
                  for cid, s, c, w in zip(ids[owner].tolist(), score.tolist(), comment.tolist(),
                                          ts_text(when).tolist())]
    return lines


def _consents(rng, t, sk: dict, *, ids: np.ndarray, last_seen: np.ndarray,
              stamp: str) -> tuple[list[str], list[str], np.ndarray]:
    """Per channel asked at sign-up (granted or not, by persona); some change their mind
    later (churners withdraw more). Returns Consent lines, ConsentChange lines, email opt-in."""
    persona, churner, signup = sk["persona"], sk["churner"], sk["signup"]
    n = len(ids)
    current, history = [], []
    email_opt_in = np.zeros(n, dtype=bool)
    until = np.maximum(last_seen, signup)
    for c, channel in enumerate(P.CHANNELS):
        ask, grant = t["consent"][persona, c].T
        asked = rng.random(n) < ask
        granted = rng.random(n) < grant
        flips = rng.random(n) < np.where(granted, np.where(churner, 0.35, 0.06), 0.05)
        flip_at = signup + (rng.random(n) * (until - signup)).astype(np.int64)
        flips &= asked & (flip_at > signup)
        final = granted ^ flips
        changed = np.where(flips, flip_at, signup)
        if channel == "email":
            email_opt_in = asked & final
        who = np.flatnonzero(asked)
        signup_text = ts_text(signup[who]).tolist()
        history += [f"{cid}\t{channel}\t{'t' if g else 'f'}\t{w}\tsignup_form\t{stamp}"
                    for cid, g, w in zip(ids[who].tolist(), granted[who].tolist(), signup_text)]
        later = np.flatnonzero(flips)
        history += [f"{cid}\t{channel}\t{'t' if g else 'f'}\t{w}\tpreference_center\t{stamp}"
                    for cid, g, w in zip(ids[later].tolist(), final[later].tolist(),
                                         ts_text(flip_at[later]).tolist())]
        current += [f"{cid}\t{channel}\t{'t' if g else 'f'}\t{w}\t{s}"
                    for cid, g, w, s in zip(ids[who].tolist(), final[who].tolist(),
                                            ts_text(changed[who]).tolist(),
                                            np.where(flips[who], "preference_center", "signup_form").tolist())]
    return current, history, email_opt_in


@dataclass
class Chunk:
    customers: list[str]
    truth: list[str]
    events: list[str]
    surveys: list[str]
    consents: list[str]
    changes: list[str]
    external_range: list[str]
    churned: int
    personas: np.ndarray


def chunk_rows(context: dict, c: int, n: int, budget: int, ids: np.ndarray) -> Chunk:
    """Chunk c's rows as COPY text (no database access: runs in the worker thread)."""
    t = tables()
    seed, now_s, stamp, prefix = context["seed"], context["now_s"], context["stamp"], context["prefix"]
    sk = skeleton(seed, c, n, now_s)
    rng = np.random.default_rng([seed, 2, c])
    first = c * CUSTOMER_CHUNK
    has_signup = np.arange(first, first + n) < context["signups"]
    mu, sigma = t["seats"][sk["persona"]].T
    seats = np.maximum(np.rint(rng.lognormal(mu, sigma)), 1).astype(np.int64)
    ev = _events(rng, t, sk, budget, has_signup, seats, np.random.default_rng([seed, 4, c]))
    last_seen = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_seen, ev["owner"], ev["ts"])
    numbers = np.arange(context["offset"] + first, context["offset"] + first + n)
    consents, changes, opt_in = _consents(rng, t, sk, ids=ids, last_seen=last_seen, stamp=stamp)
    surveys = _surveys(rng, t, sk, ids=ids, last_seen=last_seen, survey_ids=context["survey_ids"], stamp=stamp)
    customers = _customers(rng, t, sk, ids=ids, numbers=numbers, prefix=prefix, now_s=now_s,
                           last_seen=last_seen, email_opt_in=opt_in, seats=seats)
    churned_at = np.where(sk["churner"] & (last_seen >= 0), last_seen, -1)
    truth = [f"{cid}\t{P.PERSONA_KEYS[p]}\t{'t' if ch >= 0 else 'f'}\t{w if ch >= 0 else NULL}\t{seed}\t{stamp}"
             for cid, p, ch, w in zip(ids.tolist(), sk["persona"].tolist(), churned_at.tolist(),
                                      ts_text(np.maximum(churned_at, 0)).tolist())]
    names, cids, stamps = t["names"][ev["name"]], ids[ev["owner"]], ts_text(ev["ts"])
    tail = f"\t\\N\t{stamp}\tgenerator"
    events = [f"{cid}\t{name}\t{ts}\t{props}{tail}"
              for cid, name, ts, props in zip(cids.tolist(), names.tolist(), stamps.tolist(), ev["props"].tolist())]
    return Chunk(
        customers=customers, truth=truth, events=events, surveys=surveys, consents=consents, changes=changes,
        external_range=[f"{prefix}{numbers[0]:08d}", f"{prefix}{numbers[-1] + 1:08d}"],
        churned=int((churned_at >= 0).sum()), personas=np.bincount(sk["persona"], minlength=len(P.PERSONAS)),
    )
