"""The planted personas of the data generator (demo/generator/): pure data.

Each persona is a distribution over every segmentation type (demographic, geographic,
firmographic, technographic, psychographic, needs, value) and over behaviour (event mix,
activity rate, features, purchases, churn, survey scores, consent). The distributions
overlap on purpose — a bargain hunter can be an engineer on macOS — so a clustering run
has to recover the personas from many weak signals, not from one give-away column.
The true persona is never written to the customer; it goes to GeneratorTruth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HISTORY_DAYS = 730  # sign-ups spread over the two years before `now`

# ---------------------------------------------------------------- shared vocabularies

COUNTRIES = {
    # country: (language, timezone, [(region, city), …])
    "US": ("en", "America/New_York", [("California", "San Francisco"), ("New York", "New York"),
                                      ("Texas", "Austin"), ("Illinois", "Chicago"), ("Washington", "Seattle")]),
    "GB": ("en", "Europe/London", [("England", "London"), ("England", "Manchester"), ("Scotland", "Edinburgh")]),
    "DE": ("de", "Europe/Berlin", [("Berlin", "Berlin"), ("Bavaria", "Munich"), ("Hamburg", "Hamburg")]),
    "FR": ("fr", "Europe/Paris", [("Île-de-France", "Paris"), ("Auvergne-Rhône-Alpes", "Lyon")]),
    "CA": ("en", "America/Toronto", [("Ontario", "Toronto"), ("British Columbia", "Vancouver")]),
    "NL": ("nl", "Europe/Amsterdam", [("North Holland", "Amsterdam"), ("South Holland", "Rotterdam")]),
    "ES": ("es", "Europe/Madrid", [("Madrid", "Madrid"), ("Catalonia", "Barcelona")]),
    "BR": ("pt", "America/Sao_Paulo", [("São Paulo", "São Paulo"), ("Rio de Janeiro", "Rio de Janeiro")]),
    "IN": ("en", "Asia/Kolkata", [("Karnataka", "Bengaluru"), ("Maharashtra", "Mumbai"), ("Delhi", "New Delhi")]),
    "JP": ("ja", "Asia/Tokyo", [("Tokyo", "Tokyo"), ("Osaka", "Osaka")]),
    "AU": ("en", "Australia/Sydney", [("New South Wales", "Sydney"), ("Victoria", "Melbourne")]),
    "SE": ("sv", "Europe/Stockholm", [("Stockholm", "Stockholm"), ("Västra Götaland", "Gothenburg")]),
}
GENDERS = ["female", "male", "nonbinary", ""]
INCOME_BANDS = ["<25k", "25-50k", "50-100k", "100-200k", ">200k"]
OCCUPATIONS = ["engineer", "founder", "product_manager", "marketer", "operations", "designer",
               "it_director", "procurement", "student", "freelancer", "sales", "analyst"]
INDUSTRIES = ["software", "media", "education", "retail", "finance", "healthcare", "manufacturing",
              "nonprofit", "hospitality"]
DEVICES = ["desktop", "mobile", "tablet"]
OSES = {"desktop": ["macOS", "Windows", "Linux"], "mobile": ["iOS", "Android"], "tablet": ["iPadOS", "Android"]}
TECH = ["react", "node", "python", "aws", "gcp", "github", "segment", "hubspot", "salesforce",
        "slack", "azure", "snowflake", "okta", "shopify", "stripe", "wordpress"]
PLANS = ["free", "starter", "pro", "team", "enterprise"]
PLAN_PRICE = {"free": 0.0, "starter": 19.0, "pro": 79.0, "team": 29.0, "enterprise": 1500.0}  # team: per seat
ANNUAL_DISCOUNT = 10.0  # an annual invoice is 10 months' price
CHANNELS = ["email", "sms", "push", "in_app", "ads"]

# Custom traits the generator writes into `traits`, registered in the tenant's trait registry.
CUSTOM_TRAITS = [
    # (key, type, category, description)
    ("values_priority", "string", "psychographic", "What the customer values most in a tool"),
    ("risk_attitude", "string", "psychographic", "Adoption attitude: early_adopter, pragmatist or conservative"),
    ("price_sensitivity", "number", "psychographic", "Self-reported price sensitivity, 1 (low) to 5 (high)"),
    ("primary_need", "string", "needs", "The job the customer hired the product for"),
    ("use_case", "string", "needs", "Main use case named at onboarding"),
    ("seats", "number", "value", "Paid seats"),
    ("billing_cycle", "string", "value", "monthly or annual (free plans: none)"),
]
VALUES_PRIORITY = ["speed", "control", "collaboration", "security", "price", "simplicity"]
RISK_ATTITUDES = ["early_adopter", "pragmatist", "conservative"]
PRIMARY_NEEDS = ["automation", "api_access", "collaboration", "compliance", "cost_savings", "mobile_access",
                 "insights"]
USE_CASES = ["internal_tools", "client_projects", "team_reporting", "governance", "side_project",
             "on_the_go_tracking", "evaluation"]

# Events other than the lifecycle ones (signup, upgrade, recurring purchases, cancellation),
# drawn by each persona's mix.
RANDOM_EVENTS = ["login", "page_viewed", "project_created", "api_key_generated", "feature_x_used",
                 "invite_sent", "report_exported", "support_ticket_opened", "purchase"]
FEATURES = ["api", "ai_assist", "alerts", "dashboards", "export", "integrations", "sso", "audit_log",
            "mobile_sync", "templates"]
PAGES = ["/", "/pricing", "/docs", "/dashboard", "/settings", "/billing", "/integrations", "/blog",
         "/team", "/security"]
LOGIN_METHODS = ["password", "google", "sso", "magic_link"]
TICKET_TOPICS = ["bug", "how_to", "billing", "security_review", "feature_request"]
CANCEL_REASONS = ["too_expensive", "missing_feature", "switched_competitor", "no_longer_needed", "too_complex"]
SIGNUP_SOURCES = ["organic", "ads", "referral", "ios_app", "android_app", "sales"]
EXPORT_FORMATS = ["csv", "pdf", "xlsx"]
PROJECT_TEMPLATES = ["blank", "api_service", "team_board", "report", "mobile"]


@dataclass(frozen=True)
class Persona:
    key: str
    share: float
    description: str
    # demographic
    age: tuple[float, float]  # mean, sd (years)
    gender: list[float]
    income: list[float]
    occupation: dict[str, float]
    # geographic
    country: dict[str, float]
    # firmographic
    industry: dict[str, float]
    company_size: tuple[float, float, int, int]  # lognormal mu, sigma; clip min, max (employees)
    revenue_per_employee: float  # annual_revenue ≈ size × this × lognormal noise
    # technographic
    device: list[float]
    desktop_os: list[float]  # macOS, Windows, Linux
    tech: dict[str, float]  # probability of each technology in the stack
    # psychographic / needs / value
    values_priority: dict[str, float]
    risk_attitude: list[float]
    price_sensitivity: float  # mean on 1..5
    primary_need: dict[str, float]
    use_case: dict[str, float]
    seats: tuple[float, float]  # lognormal mu, sigma
    plan: list[float]  # over PLANS
    annual_share: float  # paid customers billed yearly
    upgraded_share: float  # paid customers who started on free and upgraded
    # behaviour
    signup_age: tuple[float, float]  # Beta(a, b) over HISTORY_DAYS: small a/(a+b) = recent sign-ups
    rate: tuple[float, float]  # events per active day: lognormal mu, sigma
    mix: dict[str, float]  # over RANDOM_EVENTS
    features: dict[str, float]
    pages: dict[str, float]
    login: list[float]  # over LOGIN_METHODS
    tickets: dict[str, float]
    signup_source: dict[str, float]
    one_off_amount: tuple[float, float]  # lognormal mu, sigma (USD)
    churn: float  # share that churns: activity decays, then stops
    decay: float  # churners' activity falls by e^-decay over their active life
    cancel_share: float  # paying churners who send subscription_cancelled at the end
    cancel_reason: dict[str, float]
    # surveys (churners answer lower)
    nps: tuple[float, float]  # mean, sd on 0..10
    csat: tuple[float, float]  # mean, sd on 1..5
    nps_rate: float
    csat_rate: float
    # consent: (asked share, granted share) per channel in CHANNELS order
    consent: list[tuple[float, float]] = field(default_factory=list)
    # Share of the random events moved into Friday 18:00 – Sunday 16:00 on the customer's
    # local clock (0: spread over the week, as every persona but the weekend one).
    weekend: float = 0.0


# The weekend persona was planted later (clustering must find a time-of-week pattern): the
# first six personas' shares were scaled by 0.92 to make room; their distributions are as before.
PERSONAS: list[Persona] = [
    Persona(
        key="power_builder", share=0.1564,
        description="Developers building on the API: daily, heavy feature and API use, pro plan, promoters",
        age=(31, 6), gender=[0.30, 0.64, 0.04, 0.02], income=[0.03, 0.12, 0.40, 0.35, 0.10],
        occupation={"engineer": 0.7, "founder": 0.15, "product_manager": 0.1, "designer": 0.05},
        country={"US": 0.3, "DE": 0.12, "IN": 0.15, "GB": 0.08, "NL": 0.07, "SE": 0.06, "CA": 0.07, "JP": 0.05,
                 "BR": 0.05, "FR": 0.05},
        industry={"software": 0.75, "media": 0.1, "finance": 0.1, "education": 0.05},
        company_size=(3.3, 1.0, 2, 800), revenue_per_employee=180_000,
        device=[0.92, 0.06, 0.02], desktop_os=[0.55, 0.10, 0.35],
        tech={"react": 0.7, "node": 0.65, "python": 0.6, "aws": 0.55, "gcp": 0.3, "github": 0.9, "segment": 0.3,
              "slack": 0.6, "stripe": 0.3},
        values_priority={"speed": 0.45, "control": 0.4, "simplicity": 0.15},
        risk_attitude=[0.7, 0.25, 0.05], price_sensitivity=2.5,
        primary_need={"api_access": 0.55, "automation": 0.35, "insights": 0.1},
        use_case={"internal_tools": 0.6, "client_projects": 0.25, "side_project": 0.15},
        seats=(0.5, 0.6), plan=[0.15, 0.15, 0.60, 0.08, 0.02], annual_share=0.25, upgraded_share=0.6,
        signup_age=(1.6, 1.6), rate=(0.6, 0.5),
        mix={"login": 0.2, "page_viewed": 0.1, "project_created": 0.14, "api_key_generated": 0.08,
             "feature_x_used": 0.4, "invite_sent": 0.02, "report_exported": 0.03, "support_ticket_opened": 0.02,
             "purchase": 0.01},
        features={"api": 0.4, "ai_assist": 0.2, "alerts": 0.15, "integrations": 0.15, "templates": 0.1},
        pages={"/docs": 0.45, "/dashboard": 0.3, "/integrations": 0.15, "/settings": 0.1},
        login=[0.3, 0.5, 0.0, 0.2], tickets={"bug": 0.6, "feature_request": 0.3, "how_to": 0.1},
        signup_source={"organic": 0.6, "referral": 0.35, "ads": 0.05},
        one_off_amount=(4.0, 0.5),
        churn=0.10, decay=3.0, cancel_share=0.7,
        cancel_reason={"missing_feature": 0.5, "switched_competitor": 0.3, "no_longer_needed": 0.2},
        nps=(9.0, 1.1), csat=(4.5, 0.6), nps_rate=0.45, csat_rate=0.25,
        consent=[(1.0, 0.55), (0.15, 0.08), (0.3, 0.25), (0.9, 0.85), (0.4, 0.12)],
    ),
    Persona(
        key="team_admin", share=0.1564,
        description="Team leads rolling it out: invites and exports, team plan with many seats, weekly use",
        age=(38, 7), gender=[0.52, 0.45, 0.02, 0.01], income=[0.02, 0.10, 0.45, 0.35, 0.08],
        occupation={"product_manager": 0.3, "marketer": 0.3, "operations": 0.3, "analyst": 0.1},
        country={"US": 0.35, "GB": 0.15, "CA": 0.1, "AU": 0.1, "DE": 0.1, "FR": 0.08, "NL": 0.06, "ES": 0.06},
        industry={"media": 0.3, "education": 0.25, "retail": 0.2, "software": 0.15, "nonprofit": 0.1},
        company_size=(5.0, 0.8, 20, 3000), revenue_per_employee=140_000,
        device=[0.80, 0.08, 0.12], desktop_os=[0.45, 0.55, 0.0],
        tech={"slack": 0.85, "hubspot": 0.55, "salesforce": 0.3, "segment": 0.25, "wordpress": 0.3, "gcp": 0.2},
        values_priority={"collaboration": 0.6, "simplicity": 0.3, "speed": 0.1},
        risk_attitude=[0.2, 0.65, 0.15], price_sensitivity=3.0,
        primary_need={"collaboration": 0.7, "insights": 0.3},
        use_case={"team_reporting": 0.7, "client_projects": 0.3},
        seats=(2.6, 0.6), plan=[0.05, 0.10, 0.15, 0.68, 0.02], annual_share=0.45, upgraded_share=0.4,
        signup_age=(1.6, 1.3), rate=(-0.2, 0.5),
        mix={"login": 0.25, "page_viewed": 0.15, "project_created": 0.08, "api_key_generated": 0.0,
             "feature_x_used": 0.12, "invite_sent": 0.22, "report_exported": 0.15, "support_ticket_opened": 0.02,
             "purchase": 0.01},
        features={"dashboards": 0.45, "export": 0.25, "templates": 0.2, "alerts": 0.1},
        pages={"/team": 0.35, "/dashboard": 0.35, "/settings": 0.15, "/billing": 0.05, "/": 0.1},
        login=[0.4, 0.5, 0.05, 0.05], tickets={"how_to": 0.6, "billing": 0.2, "feature_request": 0.2},
        signup_source={"organic": 0.4, "referral": 0.3, "ads": 0.2, "sales": 0.1},
        one_off_amount=(4.5, 0.4),
        churn=0.12, decay=2.5, cancel_share=0.8,
        cancel_reason={"too_expensive": 0.3, "no_longer_needed": 0.4, "too_complex": 0.3},
        nps=(7.8, 1.3), csat=(4.1, 0.7), nps_rate=0.35, csat_rate=0.3,
        consent=[(1.0, 0.85), (0.3, 0.2), (0.4, 0.3), (0.8, 0.75), (0.5, 0.35)],
    ),
    Persona(
        key="evaluator", share=0.2024,
        description="Tire-kickers: recent sign-ups reading pricing and docs, free plan, over half of them leave",
        age=(29, 8), gender=[0.45, 0.50, 0.03, 0.02], income=[0.15, 0.30, 0.35, 0.15, 0.05],
        occupation={"engineer": 0.2, "student": 0.25, "marketer": 0.15, "founder": 0.1, "analyst": 0.15,
                    "freelancer": 0.15},
        country={"US": 0.2, "IN": 0.2, "BR": 0.12, "GB": 0.08, "DE": 0.08, "FR": 0.08, "ES": 0.08, "JP": 0.06,
                 "CA": 0.05, "AU": 0.05},
        industry={"software": 0.3, "education": 0.2, "retail": 0.15, "media": 0.15, "hospitality": 0.1,
                  "nonprofit": 0.1},
        company_size=(2.0, 1.3, 1, 500), revenue_per_employee=70_000,
        device=[0.65, 0.30, 0.05], desktop_os=[0.4, 0.5, 0.1],
        tech={"react": 0.2, "wordpress": 0.3, "gcp": 0.1, "github": 0.3, "slack": 0.3, "shopify": 0.1},
        values_priority={"simplicity": 0.4, "price": 0.3, "speed": 0.3},
        risk_attitude=[0.35, 0.45, 0.2], price_sensitivity=3.5,
        primary_need={"insights": 0.4, "automation": 0.3, "cost_savings": 0.3},
        use_case={"evaluation": 0.7, "side_project": 0.3},
        seats=(0.0, 0.3), plan=[0.90, 0.08, 0.02, 0.0, 0.0], annual_share=0.05, upgraded_share=0.9,
        signup_age=(1.0, 4.0), rate=(-0.6, 0.6),
        mix={"login": 0.2, "page_viewed": 0.55, "project_created": 0.08, "api_key_generated": 0.02,
             "feature_x_used": 0.1, "invite_sent": 0.01, "report_exported": 0.01, "support_ticket_opened": 0.03,
             "purchase": 0.0},
        features={"templates": 0.4, "dashboards": 0.3, "ai_assist": 0.3},
        pages={"/pricing": 0.35, "/docs": 0.25, "/": 0.2, "/blog": 0.1, "/integrations": 0.1},
        login=[0.6, 0.4, 0.0, 0.0], tickets={"how_to": 0.7, "billing": 0.3},
        signup_source={"ads": 0.45, "organic": 0.45, "referral": 0.1},
        one_off_amount=(3.0, 0.5),
        churn=0.55, decay=4.0, cancel_share=0.5,
        cancel_reason={"missing_feature": 0.3, "too_complex": 0.3, "no_longer_needed": 0.4},
        nps=(5.8, 2.0), csat=(3.4, 0.9), nps_rate=0.15, csat_rate=0.1,
        consent=[(1.0, 0.4), (0.1, 0.05), (0.3, 0.15), (0.5, 0.4), (0.6, 0.2)],
    ),
    Persona(
        key="enterprise_buyer", share=0.0736,
        description="Large regulated companies: SSO, security reviews, enterprise plan, big annual invoices",
        age=(46, 7), gender=[0.40, 0.58, 0.01, 0.01], income=[0.0, 0.02, 0.18, 0.50, 0.30],
        occupation={"it_director": 0.5, "procurement": 0.25, "operations": 0.15, "analyst": 0.1},
        country={"US": 0.45, "GB": 0.15, "DE": 0.15, "FR": 0.08, "JP": 0.07, "CA": 0.05, "NL": 0.05},
        industry={"finance": 0.4, "healthcare": 0.3, "manufacturing": 0.3},
        company_size=(8.3, 0.9, 500, 200_000), revenue_per_employee=320_000,
        device=[0.97, 0.02, 0.01], desktop_os=[0.15, 0.85, 0.0],
        tech={"azure": 0.7, "salesforce": 0.7, "snowflake": 0.5, "okta": 0.8, "aws": 0.3, "slack": 0.4},
        values_priority={"security": 0.7, "control": 0.3},
        risk_attitude=[0.02, 0.28, 0.7], price_sensitivity=1.5,
        primary_need={"compliance": 0.7, "insights": 0.3},
        use_case={"governance": 0.7, "team_reporting": 0.3},
        seats=(4.5, 0.7), plan=[0.0, 0.0, 0.05, 0.05, 0.90], annual_share=0.85, upgraded_share=0.1,
        signup_age=(2.5, 1.5), rate=(-0.9, 0.4),
        mix={"login": 0.3, "page_viewed": 0.1, "project_created": 0.05, "api_key_generated": 0.02,
             "feature_x_used": 0.2, "invite_sent": 0.05, "report_exported": 0.18, "support_ticket_opened": 0.08,
             "purchase": 0.02},
        features={"sso": 0.35, "audit_log": 0.35, "dashboards": 0.2, "export": 0.1},
        pages={"/security": 0.3, "/dashboard": 0.4, "/settings": 0.2, "/billing": 0.1},
        login=[0.0, 0.0, 1.0, 0.0], tickets={"security_review": 0.5, "how_to": 0.3, "billing": 0.2},
        signup_source={"sales": 0.8, "referral": 0.2},
        one_off_amount=(8.0, 0.6),
        churn=0.05, decay=2.0, cancel_share=0.9,
        cancel_reason={"switched_competitor": 0.6, "missing_feature": 0.4},
        nps=(7.5, 1.2), csat=(4.0, 0.6), nps_rate=0.3, csat_rate=0.45,
        consent=[(1.0, 0.9), (0.05, 0.02), (0.05, 0.02), (0.7, 0.6), (0.2, 0.05)],
    ),
    Persona(
        key="bargain_hunter", share=0.1656,
        description="Price-sensitive small buyers: pricing and billing pages, small one-off purchases, "
                    "billing tickets, cancel over price, detractors",
        age=(27, 6), gender=[0.50, 0.46, 0.03, 0.01], income=[0.35, 0.40, 0.20, 0.05, 0.0],
        occupation={"freelancer": 0.45, "student": 0.3, "designer": 0.15, "sales": 0.1},
        country={"IN": 0.25, "BR": 0.2, "ES": 0.12, "US": 0.15, "FR": 0.08, "DE": 0.08, "GB": 0.07, "AU": 0.05},
        industry={"retail": 0.35, "hospitality": 0.25, "media": 0.2, "education": 0.2},
        company_size=(0.5, 0.6, 1, 30), revenue_per_employee=50_000,
        device=[0.55, 0.40, 0.05], desktop_os=[0.2, 0.7, 0.1],
        tech={"wordpress": 0.6, "shopify": 0.5, "stripe": 0.4, "gcp": 0.1},
        values_priority={"price": 0.8, "simplicity": 0.2},
        risk_attitude=[0.15, 0.5, 0.35], price_sensitivity=4.6,
        primary_need={"cost_savings": 0.8, "automation": 0.2},
        use_case={"client_projects": 0.6, "side_project": 0.4},
        seats=(0.0, 0.2), plan=[0.45, 0.50, 0.05, 0.0, 0.0], annual_share=0.35, upgraded_share=0.75,
        signup_age=(1.3, 1.5), rate=(-0.7, 0.5),
        mix={"login": 0.25, "page_viewed": 0.35, "project_created": 0.06, "api_key_generated": 0.0,
             "feature_x_used": 0.1, "invite_sent": 0.01, "report_exported": 0.04, "support_ticket_opened": 0.07,
             "purchase": 0.12},
        features={"templates": 0.5, "export": 0.4, "ai_assist": 0.1},
        pages={"/pricing": 0.4, "/billing": 0.3, "/dashboard": 0.2, "/blog": 0.1},
        login=[0.7, 0.3, 0.0, 0.0], tickets={"billing": 0.7, "how_to": 0.2, "bug": 0.1},
        signup_source={"ads": 0.5, "referral": 0.3, "organic": 0.2},
        one_off_amount=(2.3, 0.5),
        churn=0.35, decay=3.0, cancel_share=0.85,
        cancel_reason={"too_expensive": 0.8, "switched_competitor": 0.2},
        nps=(5.0, 1.8), csat=(3.1, 0.9), nps_rate=0.35, csat_rate=0.35,
        consent=[(1.0, 0.8), (0.5, 0.45), (0.5, 0.45), (0.7, 0.6), (0.6, 0.55)],
    ),
    Persona(
        key="mobile_casual", share=0.1656,
        description="Small shops checking in from phones: short mobile sessions, push-friendly, free or starter",
        age=(34, 10), gender=[0.56, 0.40, 0.03, 0.01], income=[0.15, 0.35, 0.35, 0.12, 0.03],
        occupation={"operations": 0.3, "founder": 0.3, "sales": 0.25, "marketer": 0.15},
        country={"US": 0.3, "BR": 0.12, "GB": 0.1, "AU": 0.1, "CA": 0.08, "JP": 0.1, "ES": 0.1, "FR": 0.1},
        industry={"retail": 0.45, "hospitality": 0.35, "media": 0.2},
        company_size=(1.5, 0.8, 1, 60), revenue_per_employee=90_000,
        device=[0.05, 0.85, 0.10], desktop_os=[0.6, 0.4, 0.0],
        tech={"shopify": 0.6, "stripe": 0.4, "wordpress": 0.2, "slack": 0.1},
        values_priority={"simplicity": 0.7, "speed": 0.2, "price": 0.1},
        risk_attitude=[0.3, 0.5, 0.2], price_sensitivity=3.2,
        primary_need={"mobile_access": 0.7, "insights": 0.3},
        use_case={"on_the_go_tracking": 0.8, "side_project": 0.2},
        seats=(0.0, 0.3), plan=[0.60, 0.35, 0.05, 0.0, 0.0], annual_share=0.15, upgraded_share=0.7,
        signup_age=(1.3, 1.5), rate=(-0.3, 0.6),
        mix={"login": 0.5, "page_viewed": 0.3, "project_created": 0.02, "api_key_generated": 0.0,
             "feature_x_used": 0.15, "invite_sent": 0.0, "report_exported": 0.0, "support_ticket_opened": 0.02,
             "purchase": 0.01},
        features={"mobile_sync": 0.7, "alerts": 0.3},
        pages={"/dashboard": 0.7, "/": 0.2, "/settings": 0.1},
        login=[0.3, 0.3, 0.0, 0.4], tickets={"how_to": 0.5, "bug": 0.5},
        signup_source={"ios_app": 0.5, "android_app": 0.4, "ads": 0.1},
        one_off_amount=(2.8, 0.4),
        churn=0.25, decay=3.0, cancel_share=0.6,
        cancel_reason={"no_longer_needed": 0.6, "too_complex": 0.2, "too_expensive": 0.2},
        nps=(7.0, 1.6), csat=(3.9, 0.8), nps_rate=0.2, csat_rate=0.15,
        consent=[(1.0, 0.5), (0.3, 0.25), (0.95, 0.8), (0.9, 0.85), (0.5, 0.4)],
    ),
    Persona(
        key="weekend_power_user", share=0.08,
        description="Hobbyist builders active almost only from Friday evening to Sunday afternoon, on their own "
                    "projects, buying add-ons: about three times the average spend",
        age=(33, 7), gender=[0.40, 0.55, 0.04, 0.01], income=[0.05, 0.20, 0.40, 0.25, 0.10],
        occupation={"engineer": 0.3, "designer": 0.25, "freelancer": 0.25, "founder": 0.2},
        country={"US": 0.35, "GB": 0.2, "DE": 0.15, "FR": 0.1, "AU": 0.1, "CA": 0.1},
        industry={"media": 0.4, "software": 0.3, "retail": 0.3},
        company_size=(1.0, 0.8, 1, 50), revenue_per_employee=100_000,
        device=[0.60, 0.15, 0.25], desktop_os=[0.6, 0.3, 0.1],
        tech={"github": 0.5, "react": 0.4, "shopify": 0.3, "stripe": 0.5, "wordpress": 0.3},
        values_priority={"speed": 0.4, "control": 0.3, "simplicity": 0.3},
        risk_attitude=[0.6, 0.3, 0.1], price_sensitivity=2.0,
        primary_need={"automation": 0.5, "insights": 0.3, "api_access": 0.2},
        use_case={"side_project": 0.7, "client_projects": 0.3},
        seats=(0.0, 0.3), plan=[0.05, 0.15, 0.70, 0.10, 0.0], annual_share=0.3, upgraded_share=0.5,
        signup_age=(1.6, 1.6), rate=(0.4, 0.5),
        mix={"login": 0.15, "page_viewed": 0.1, "project_created": 0.14, "api_key_generated": 0.03,
             "feature_x_used": 0.25, "invite_sent": 0.01, "report_exported": 0.06, "support_ticket_opened": 0.02,
             "purchase": 0.24},
        features={"ai_assist": 0.3, "templates": 0.2, "integrations": 0.2, "export": 0.3},
        pages={"/dashboard": 0.5, "/integrations": 0.2, "/docs": 0.2, "/blog": 0.1},
        login=[0.4, 0.4, 0.0, 0.2], tickets={"feature_request": 0.5, "bug": 0.5},
        signup_source={"organic": 0.5, "referral": 0.4, "ads": 0.1},
        one_off_amount=(6.3, 0.5),
        churn=0.08, decay=3.0, cancel_share=0.6,
        cancel_reason={"no_longer_needed": 0.5, "switched_competitor": 0.5},
        nps=(8.5, 1.2), csat=(4.4, 0.6), nps_rate=0.3, csat_rate=0.25,
        consent=[(1.0, 0.7), (0.2, 0.1), (0.5, 0.4), (0.9, 0.8), (0.4, 0.2)],
        weekend=0.92,
    ),
]
PERSONA_KEYS = [p.key for p in PERSONAS]
