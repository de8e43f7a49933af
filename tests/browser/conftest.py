"""Real-browser tests: Debian's Chromium driven by pytest-playwright against a live
Django server on loopback. `*.localhost` resolves to loopback inside Chromium, so tenant
subdomains work as they do for a person running `make run`."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it are ordinary synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
CHROMIUM = "/usr/bin/chromium"
# Not under test-results/: pytest-playwright empties that folder.
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".screenshots"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    }


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        target = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(target), full_page=True)
        return target

    return take


# ------------------------------------------------------------------ accessibility
# axe-core (installed from npm by `make assets`, read from node_modules: no CDN) runs in
# every page of the app a browser test loads — after the page settles, and again after
# each htmx swap — and the test fails on any serious or critical WCAG 2 A/AA violation.
AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAG = "axe-violations:"
BLOCKING = ("serious", "critical")
AUDIT = """
(() => {
  if (window.top !== window || !/\\.localhost$/.test(location.hostname)) return;
  let timer = null;
  let retries = 0;
  const audit = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      // Colours mid-transition (a menu fading in) are not the page's: let finite ones end.
      const moving = () => document.getAnimations().filter(
        (a) => a.playState === "running" && a.effect?.getTiming().iterations !== Infinity);
      await Promise.race([Promise.all(moving().map((a) => a.finished.catch(() => null))),
                          new Promise((done) => setTimeout(done, 1500))]);
      let started = false;  // a transition may start and end within axe's run (a 75 ms fade-out)
      const mark = () => { started = true; };
      document.addEventListener("transitionrun", mark, true);
      document.addEventListener("animationstart", mark, true);
      const result = await window.axe.run(document, {
        runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, resultTypes: ["violations"]});
      document.removeEventListener("transitionrun", mark, true);
      document.removeEventListener("animationstart", mark, true);
      // A transition that started while axe ran (the test clicked a menu open) may have
      // been caught half-way: discard this audit and take another once it has ended.
      if ((started || moving().length) && retries++ < 5) { audit(); return; }
      retries = 0;
      const blocking = result.violations.filter((v) => %s.includes(v.impact)).map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" ") + " — " + (n.failureSummary || "").split("\\n")[1])}));
      console.log("%s" + JSON.stringify({url: location.pathname + location.search, violations: blocking}));
    }, 400);
  };
  window.addEventListener("load", audit);
  document.addEventListener("htmx:afterSettle", audit);
})();
""" % (list(BLOCKING), AXE_TAG)


# Transitions and animations run in no time under test: axe reads colours mid-fade
# otherwise (a menu closing as the test clicks in it), and nothing here tests motion.
STILL = """
document.addEventListener("DOMContentLoaded", () => {
  const style = document.createElement("style");
  style.textContent = "*, *::before, *::after { transition-duration: 0s !important; transition-delay: 0s !important;"
    + " animation-duration: 0s !important; animation-delay: 0s !important; }";
  document.head.append(style);
});
"""


@pytest.fixture(autouse=True)
def accessible_pages(request):
    """Every app page the test's browser loads passes axe-core (serious and critical
    WCAG 2 A/AA rules); the failures name the page, the rule and the nodes."""
    if "page" not in request.fixturenames:
        yield []
        return
    import json

    page = request.getfixturevalue("page")
    page.context.add_init_script(path=str(AXE))
    page.context.add_init_script(script=STILL)
    page.context.add_init_script(script=AUDIT)
    audits: list[dict] = []
    page.on("console", lambda message: audits.append(json.loads(message.text[len(AXE_TAG):]))
            if message.text.startswith(AXE_TAG) else None)
    yield audits  # a test of the audit itself reads (and clears) what it found
    if not page.is_closed():
        page.wait_for_timeout(1200)  # the last page's audit (it waits 400 ms for the page to settle)
    failing = [a for a in audits if a["violations"]]
    if failing:
        lines = [f"{a['url']}: {v['impact']} {v['id']} ({v['help']}): {'; '.join(v['nodes'])}"
                 for a in failing for v in a["violations"]]
        pytest.fail("Accessibility (axe-core, WCAG 2 A/AA):\n" + "\n".join(dict.fromkeys(lines)), pytrace=False)
